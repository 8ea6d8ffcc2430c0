"""Reading patients: no N+1, keyset pages, every read recorded in one insert, filters."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import event, func, select

from core.db import Database
from models.audit import Event
from models.clinical import Diagnosis, ExamReport, FollowUp, TreatmentPlan, Visit
from models.patient import Patient
from tests.clinical_helpers import gid, patients_of, user_id
from tests.conftest import GraphQLClient, error_codes

HISTORY = """
query ($first: Int!, $after: String) {
  patients(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name phone attendingPhysicianName departmentName
      visits { visitDate physicianName diagnoses { icd10Code } }
      diagnoses { icd10Code } examReports { kind } treatmentPlans { planType authorName }
      followUps { dueDate status overdue }
    } }
  }
}
"""


async def _add_patients(db: Database, count: int) -> None:
    physician = await user_id(db, "physician")
    async with db.transaction() as session:
        for n in range(count):
            patient = Patient(
                name=f"测试{n}", name_initials="CS", phone=f"1390000{n:04d}", attending_physician_id=physician
            )
            session.add(patient)
            await session.flush()
            visit = Visit(patient_id=patient.id, physician_id=physician, visit_date=date(2026, 1, 1))
            session.add(visit)
            await session.flush()
            diagnosis = Diagnosis(visit_id=visit.id, patient_id=patient.id, icd10_code="K64.1", icd10_name="二度痔")
            session.add(diagnosis)
            session.add(
                ExamReport(patient_id=patient.id, visit_id=visit.id, kind="anoscopy", exam_date=date(2026, 1, 1))
            )
            session.add(
                TreatmentPlan(patient_id=patient.id, plan_type="medication", description="x", author_id=physician)
            )
            session.add(FollowUp(patient_id=patient.id, visit_id=visit.id, due_date=date(2026, 2, 1)))


_SEALING = re.compile(r"audit_seal_state|event_seal|FROM event\s+WHERE event\.id IN")
# Read again when a cache's time is up, whatever the request: the session check (trusted for a second), its
# last-seen touch, and the department tree (re-read every 10 s). A slow run crosses those times between two requests.
_TIMED = re.compile(
    r"FROM auth_session|UPDATE auth_session|^SELECT department\.id, department\.parent_id\s+FROM department\s*$"
)


class StatementCounter:
    """Counts the statements sent through the app's pools (transactions, request connections, SQLite's write
    turns) on a request's behalf. `count` leaves out the kinds whose number depends on timing, not on the request:
    the WAL checkpoints SQLite's write turns start in the background every so many writes (core.db.WriteTurns);
    the audit chain's seal step that a write runs when no background sealer does (tests): it reads again the
    events committed after its read-ahead, and its scan looks further after an id gap (those are in `sealing`);
    and the reads of caches whose time ran out (`_TIMED`: the session check, the department tree; in `timed`).
    `statements` lists the counted ones (for an assertion's message)."""

    def __init__(self, client: GraphQLClient) -> None:
        self.engines = [engine.sync_engine for engine in client.services.db.engines]
        self.count = 0
        self.sealing = 0
        self.timed = 0
        self.statements: list[str] = []

    def __enter__(self) -> StatementCounter:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: Any) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("PRAGMA wal_checkpoint"):
            return
        if _SEALING.search(statement):
            self.sealing += 1
            return
        if _TIMED.search(statement.strip()):
            self.timed += 1
            return
        self.count += 1
        self.statements.append(" ".join(statement.split())[:120])


async def test_fifty_patients_cost_the_same_statements_as_ten(client: GraphQLClient, db: Database) -> None:
    await _add_patients(db, 50)
    token = await client.token("physician")
    await client.data(HISTORY, {"first": 1}, token=token)  # steady state: the process has read the department tree
    counts = {}
    for size in (10, 50):
        with StatementCounter(client) as counter:
            data = await client.data(HISTORY, {"first": size}, token=token)
        assert len(data["patients"]["edges"]) == size
        assert all(edge["node"]["visits"] for edge in data["patients"]["edges"])
        counts[size] = counter.count
    assert counts[10] == counts[50], counts
    assert counts[50] <= 20, counts


async def test_a_list_page_writes_its_read_events_in_one_insert(client: GraphQLClient, db: Database) -> None:
    await _add_patients(db, 30)
    token = await client.token("physician")
    inserts: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EVENT"):
            inserts.append(statement)

    engines = [engine.sync_engine for engine in client.services.db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", watch)
    try:
        data = await client.data(HISTORY, {"first": 25}, token=token)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", watch)
    assert len(inserts) == 1
    ids = [edge["node"]["id"] for edge in data["patients"]["edges"]]
    async with db.session() as session:
        rows = (
            (await session.execute(select(Event).where(Event.operation == "patients", Event.action == "read")))
            .scalars()
            .all()
        )
    assert sorted(gid("Patient", row.patient_id) for row in rows) == sorted(ids)
    assert {row.actor_id for row in rows} == {await user_id(db, "physician")}
    assert all(row.request_id and row.ip == "127.0.0.1" for row in rows)


async def test_a_single_read_is_recorded_and_a_refused_one_is_not_a_read(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    await client.data("query ($id: ID!) { patient(id: $id) { name } }", {"id": gid("Patient", own.id)}, as_="physician")
    async with db.session() as session:
        reads = (
            await session.execute(select(Event).where(Event.patient_id == own.id, Event.action == "read"))
        ).scalars()
        assert [row.operation for row in reads] == ["patient"]
    term = own.name[:1]
    search = await client.data(
        "query ($s: String!) { patients(filter: {search: $s}) { edges { node { id } } } }", {"s": term}, as_="physician"
    )
    assert search["patients"]["edges"]
    async with db.session() as session:
        count = (
            await session.execute(select(func.count()).select_from(Event).where(Event.action == "search"))
        ).scalar_one()
    assert count == len(search["patients"]["edges"])


async def test_keyset_pages_walk_every_patient_once(client: GraphQLClient, db: Database) -> None:
    await _add_patients(db, 23)
    token = await client.token("physician")
    seen: list[str] = []
    after = None
    while True:
        data = await client.data(HISTORY, {"first": 7, "after": after}, token=token)
        page = data["patients"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    own = await patients_of(db, "physician")
    assert len(seen) == len(set(seen)) == len(own)


async def test_page_size_and_cursor_are_checked(client: GraphQLClient) -> None:
    result = await client.run("{ patients(first: 101) { edges { node { id } } } }", as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await client.run('{ patients(after: "garbage!") { edges { node { id } } } }', as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]


async def test_filters(client: GraphQLClient, db: Database) -> None:
    own = await patients_of(db, "physician")
    async with db.session() as session:
        code = (
            await session.execute(select(Diagnosis.icd10_code).where(Diagnosis.patient_id == own[0].id))
        ).scalar_one()
        overdue = set(
            (
                await session.execute(
                    select(FollowUp.patient_id).where(FollowUp.status == "scheduled", FollowUp.due_date < date.today())
                )
            ).scalars()
        )
    data = await client.data(
        "query ($c: String!) { patients(first: 100, filter: {diagnosisCode: $c}) { edges { node { id diagnoses { icd10Code } } } } }",
        {"c": code[:3]},
        as_="physician",
    )
    nodes = [edge["node"] for edge in data["patients"]["edges"]]
    assert gid("Patient", own[0].id) in {node["id"] for node in nodes}
    assert all(any(d["icd10Code"].startswith(code[:3]) for d in node["diagnoses"]) for node in nodes)
    data = await client.data(
        "{ patients(first: 100, filter: {hasOverdueFollowUp: true}) { edges { node { id } } } }", as_="admin"
    )
    assert {edge["node"]["id"] for edge in data["patients"]["edges"]} == {gid("Patient", pk) for pk in overdue}
    physician2 = await user_id(db, "physician2")
    data = await client.data(
        "query ($p: ID!) { patients(first: 100, filter: {physicianId: $p}) { totalCount } }",
        {"p": gid("User", physician2)},
        as_="admin",
    )
    assert data["patients"]["totalCount"] == len(await patients_of(db, "physician2"))


async def test_admin_finds_a_patients_events_by_patient(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    await client.data("query ($id: ID!) { patient(id: $id) { name } }", {"id": pid}, as_="physician")
    query = """query ($p: ID!) { auditEvents(filter: {patientId: $p, action: "read"}) {
        edges { node { patientId actorId operation } } } }"""
    nodes = [edge["node"] for edge in (await client.data(query, {"p": pid}, as_="admin"))["auditEvents"]["edges"]]
    assert nodes and {node["patientId"] for node in nodes} == {pid}
    assert {"operation": "patient", "actorId": gid("User", await user_id(db, "physician")), "patientId": pid} in nodes
    assert error_codes(await client.run(query, {"p": pid}, as_="chief")) == ["GRAPHQL_VALIDATION_FAILED"]
