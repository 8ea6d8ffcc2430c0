"""Follow-ups: protocols applied to visits, outcomes (measures validated), cancellation, overdue lists."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from core.db import Database
from models.clinical import FollowUp, FollowUpProtocol
from models.integrity import Amendment
from resolvers.audit.unit import WriteUnit
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_visits import GI, count, events, fetch, gid, one, patient_pks, pk_of, record_visit, user_pk

PROTOCOLS = "{ followUpProtocols { id name offsets description } }"
APPLY = """
mutation ($visit: ID!, $protocol: ID!, $method: FollowUpMethod) {
  applyFollowUpProtocol(visitId: $visit, protocolId: $protocol, method: $method) {
    id visitId dueDate status method overdue
  }
}
"""
OUTCOME = """
mutation ($id: ID!, $input: FollowUpOutcomeInput!) {
  recordFollowUpOutcome(followUpId: $id, input: $input) {
    id status outcomeText painScore bleeding wexnerScore recurrence satisfaction recordedAt recordedByName overdue
  }
}
"""
CANCEL = "mutation ($id: ID!, $r: String!) { cancelFollowUp(followUpId: $id, reason: $r) { id status cancelReason } }"
OVERDUE = """
query ($first: Int, $after: String) {
  overdueFollowUps(first: $first, after: $after) {
    edges { cursor node { id dueDate status overdue patient { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def clinic_today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


async def protocol_id(client: GraphQLClient, offsets: list[int]) -> str:
    protocols = (await client.data(PROTOCOLS, as_="physician"))["followUpProtocols"]
    assert len(protocols) == 5
    found: str = next(p["id"] for p in protocols if p["offsets"] == offsets)
    return found


async def scheduled_follow_ups(
    client: GraphQLClient, db: Database, patient_pk: int, as_: str = "physician"
) -> list[str]:
    """A fresh visit with the 7/30/90-day protocol applied; the follow-ups' ids, earliest first."""
    visit = await record_visit(client, as_, patient_pk)
    applied = await client.data(
        APPLY, {"visit": visit["id"], "protocol": await protocol_id(client, [7, 30, 90])}, as_=as_
    )
    return [f["id"] for f in applied["applyFollowUpProtocol"]]


async def test_apply_protocol_creates_due_dates_once(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    physician = await user_pk(db, "physician")
    protocols = (await client.data(PROTOCOLS, as_="physician"))["followUpProtocols"]
    assert [p["offsets"] for p in protocols] == [[7, 30, 90], [14, 60, 180], [7, 30], [90, 180, 365], [14, 42]]
    day = date.today() - timedelta(days=20)
    visit = await record_visit(client, "physician", pks[1], day=day)
    cancer = next(p for p in protocols if p["offsets"] == [90, 180, 365])
    applied = (
        await client.data(APPLY, {"visit": visit["id"], "protocol": cancer["id"], "method": "WECHAT"}, as_="physician")
    )["applyFollowUpProtocol"]
    assert [f["dueDate"] for f in applied] == [(day + timedelta(d)).isoformat() for d in (90, 180, 365)]
    assert {(f["status"], f["method"], f["overdue"], f["visitId"]) for f in applied} == {
        ("SCHEDULED", "WECHAT", False, visit["id"])
    }
    visit_pk = pk_of("Visit", visit["id"])
    rows = await fetch(db, select(FollowUp).where(FollowUp.visit_id == visit_pk).order_by(FollowUp.due_date))
    assert [(r.due_date, r.offset_days, r.patient_id, r.status, r.method) for r in rows] == [
        (day + timedelta(d), d, pks[1], "scheduled", "wechat") for d in (90, 180, 365)
    ]
    (event,) = await events(db, "applyFollowUpProtocol")
    assert (event.outcome, event.actor_id, event.patient_id, event.entity_id) == (
        "success",
        physician,
        pks[1],
        str(visit_pk),
    )
    assert event.detail == {"protocol": cancer["name"], "followUps": [r.id for r in rows]}

    # Applying it again is a conflict and adds nothing.
    again = await client.run(APPLY, {"visit": visit["id"], "protocol": cancer["id"]}, as_="chief")
    assert error_codes(again) == ["CONFLICT"]
    assert await count(db, FollowUp, FollowUp.visit_id == visit_pk) == 3
    # Another protocol on the same visit is fine: 20 days ago + 7 is already overdue.
    short = next(p for p in protocols if p["offsets"] == [7, 30])
    second = (await client.data(APPLY, {"visit": visit["id"], "protocol": short["id"]}, as_="physician"))[
        "applyFollowUpProtocol"
    ]
    assert [(f["dueDate"], f["method"], f["overdue"]) for f in second] == [
        ((day + timedelta(7)).isoformat(), "PHONE", True),
        ((day + timedelta(30)).isoformat(), "PHONE", False),
    ]
    assert [e.outcome for e in await events(db, "applyFollowUpProtocol")] == ["success", "conflict", "success"]

    # A GI patient's visit is out of the physician's scope; an unknown protocol is NOT_FOUND.
    gi_visit = await one(db, select(FollowUp.visit_id).where(FollowUp.patient_id == pks[5]).limit(1))
    before = await count(db, FollowUp)
    out = await client.run(APPLY, {"visit": gid("Visit", gi_visit), "protocol": short["id"]}, as_="physician")
    assert error_codes(out) == ["NOT_FOUND"]
    unknown = await client.run(
        APPLY, {"visit": visit["id"], "protocol": gid("FollowUpProtocol", 9999)}, as_="physician"
    )
    assert error_codes(unknown) == ["NOT_FOUND"]
    assert await count(db, FollowUp) == before


async def test_create_protocol_is_chief_only(client: GraphQLClient, db: Database) -> None:
    mutation = """
    mutation ($n: String!, $o: [Int!]!) { createFollowUpProtocol(name: $n, offsets: $o) { id name offsets } }
    """
    created = await client.data(mutation, {"n": "肛瘘挂线随访", "o": [30, 7, 7, 14]}, as_="chief")
    assert created["createFollowUpProtocol"]["offsets"] == [7, 14, 30]
    row = await one(db, select(FollowUpProtocol).where(FollowUpProtocol.name == "肛瘘挂线随访"))
    assert row.offsets == "7,14,30"
    assert error_codes(await client.run(mutation, {"n": "肛瘘挂线随访", "o": [7]}, as_="chief")) == ["CONFLICT"]
    assert error_codes(await client.run(mutation, {"n": "x", "o": [0]}, as_="chief")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(mutation, {"n": "y", "o": []}, as_="chief")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(mutation, {"n": "z", "o": [7]}, as_="physician")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    assert await count(db, FollowUpProtocol) == 6


async def test_record_outcome_validates_and_stores(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    physician = await user_pk(db, "physician")
    first, second, third = await scheduled_follow_ups(client, db, pks[2])
    for bad in ({"painScore": 11}, {"painScore": -1}, {"wexnerScore": 21}, {"satisfaction": 0}, {"satisfaction": 6}):
        result = await client.run(OUTCOME, {"id": first, "input": {"outcomeText": "好", **bad}}, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"], bad
    row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", first)))
    assert (row.status, row.outcome_text, row.pain_score, row.recorded_by_id, row.recorded_at, row.version) == (
        "scheduled",
        None,
        None,
        None,
        None,
        1,
    )
    assert await events(db, "recordFollowUpOutcome", "success") == []

    before = datetime.now(UTC)
    measures = {"painScore": 10, "bleeding": False, "wexnerScore": 20, "recurrence": False, "satisfaction": 5}
    done = (
        await client.data(
            OUTCOME, {"id": first, "input": {"outcomeText": "伤口愈合良好，无便血", **measures}}, as_="physician"
        )
    )["recordFollowUpOutcome"]
    assert done["status"] == "COMPLETED" and done["overdue"] is False
    assert {k: done[k] for k in measures} == measures
    assert done["recordedByName"].startswith("陈医生")
    row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", first)))
    assert (row.status, row.outcome_text, row.pain_score, row.wexner_score, row.satisfaction, row.bleeding) == (
        "completed",
        "伤口愈合良好，无便血",
        10,
        20,
        5,
        False,
    )
    assert row.recorded_by_id == physician and row.version == 2
    recorded_at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    assert before - timedelta(seconds=2) <= recorded_at <= datetime.now(UTC) + timedelta(seconds=2)
    (event,) = await events(db, "recordFollowUpOutcome", "success")
    assert (event.entity_id, event.patient_id, event.actor_id, event.detail) == (
        str(row.id),
        pks[2],
        physician,
        {"status": "completed"},
    )

    # Minimum values, and the patient who could not be reached.
    low = {"painScore": 0, "wexnerScore": 0, "satisfaction": 1}
    assert (await client.data(OUTCOME, {"id": second, "input": low}, as_="chief"))["recordFollowUpOutcome"][
        "painScore"
    ] == 0
    missed = (await client.data(OUTCOME, {"id": third, "input": {"missed": True}}, as_="physician"))[
        "recordFollowUpOutcome"
    ]
    assert missed["status"] == "MISSED"
    assert (await one(db, select(FollowUp.status).where(FollowUp.id == pk_of("FollowUp", third)))) == "missed"

    # Out of scope: a GI patient's follow-up.
    gi_follow_up = await one(db, select(FollowUp.id).where(FollowUp.patient_id == pks[5]).limit(1))
    refused = await client.run(
        OUTCOME, {"id": gid("FollowUp", gi_follow_up), "input": {"painScore": 1}}, as_="physician"
    )
    assert error_codes(refused) == ["NOT_FOUND"]
    assert (await one(db, select(FollowUp.recorded_by_id).where(FollowUp.id == gi_follow_up))) != physician


async def test_cancel_follow_up(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    first, second, _ = await scheduled_follow_ups(client, db, pks[3])
    cancelled = (await client.data(CANCEL, {"id": first, "r": "患者转院"}, as_="physician"))["cancelFollowUp"]
    assert cancelled == {"id": first, "status": "CANCELLED", "cancelReason": "患者转院"}
    row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", first)))
    assert (row.status, row.cancel_reason, row.version) == ("cancelled", "患者转院", 2)
    (event,) = await events(db, "cancelFollowUp", "success")
    assert (event.patient_id, event.entity_id, event.action) == (pks[3], str(row.id), "update")
    # Cancelled is final: no second cancel, no outcome.
    assert error_codes(await client.run(CANCEL, {"id": first, "r": "again"}, as_="physician")) == ["CONFLICT"]
    assert error_codes(await client.run(OUTCOME, {"id": first, "input": {"painScore": 1}}, as_="physician")) == [
        "CONFLICT"
    ]
    # A completed one cannot be cancelled; a reason is required; out of scope is NOT_FOUND.
    await client.data(OUTCOME, {"id": second, "input": {"painScore": 2}}, as_="physician")
    assert error_codes(await client.run(CANCEL, {"id": second, "r": "late"}, as_="physician")) == ["CONFLICT"]
    _, _, third = await scheduled_follow_ups(client, db, pks[3])
    assert error_codes(await client.run(CANCEL, {"id": third, "r": "  "}, as_="physician")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(CANCEL, {"id": third, "r": "x"}, as_="physician2")) == ["NOT_FOUND"]
    assert (await one(db, select(FollowUp.status).where(FollowUp.id == pk_of("FollowUp", third)))) == "scheduled"
    # Every refusal is recorded, also one raised before the write began (the blank reason).
    assert [e.outcome for e in await events(db, "cancelFollowUp")] == [
        "success",
        "conflict",
        "conflict",
        "bad_user_input",
        "not_found",
    ]


async def _overdue_pages(client: GraphQLClient, as_: str, size: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        page = (await client.data(OVERDUE, {"first": size, "after": after}, as_=as_))["overdueFollowUps"]
        assert len(page["edges"]) <= size
        nodes.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


async def test_overdue_follow_ups_scoped_and_paginated(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    today = clinic_today()
    # Lay out the follow-ups: close every demo one, then make a known set overdue (several per day, so
    # the keyset must break ties by id), one due today (not overdue) and one completed in the past.
    async with db.transaction() as session:
        await session.execute(update(FollowUp).values(status="completed"))
        rows = (await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars().all()
        overdue_ids: dict[int, list[tuple[date, int]]] = {}
        by_patient: dict[int, list[FollowUp]] = {}
        for row in rows:
            by_patient.setdefault(row.patient_id, []).append(row)
        for index, pk in enumerate(pks):
            mine = by_patient[pk]
            for n, row in enumerate(mine[:2]):
                row.status = "scheduled"
                row.due_date = today - timedelta(days=1 + (index + n) % 3)
                overdue_ids.setdefault(index, []).append((row.due_date, row.id))
            if len(mine) > 2:
                mine[2].status = "scheduled"
                mine[2].due_date = today
            session.add_all(mine)
    expected_all = sorted(item for items in overdue_ids.values() for item in items)

    # physician2 sees the GI patients' overdue follow-ups only.
    gi = await _overdue_pages(client, "physician2", 1)
    assert [(date.fromisoformat(n["dueDate"]), pk_of("FollowUp", n["id"])) for n in gi] == sorted(
        item for i in GI for item in overdue_ids[i]
    )
    assert {n["patient"]["id"] for n in gi} == {gid("Patient", pks[i]) for i in GI}
    assert all(n["overdue"] and n["status"] == "SCHEDULED" for n in gi)

    # The admin sees all of them, in due-date order across pages of 3, with no repeats or gaps.
    everything = await _overdue_pages(client, "admin", 3)
    assert [(date.fromisoformat(n["dueDate"]), pk_of("FollowUp", n["id"])) for n in everything] == expected_all
    # The chief: CRS and its sub-department, no GI.
    chief = await _overdue_pages(client, "chief", 4)
    expected_chief = sorted(item for i, items in overdue_ids.items() if i not in GI for item in items)
    assert [(date.fromisoformat(n["dueDate"]), pk_of("FollowUp", n["id"])) for n in chief] == expected_chief
    # The physician: their own patients.
    own = await _overdue_pages(client, "physician", 5)
    assert {n["patient"]["id"] for n in own} == {gid("Patient", pks[i]) for i in (0, 1, 2, 3, 6, 7, 8, 10)}

    # Each listed patient's read is recorded for the reader.
    physician2 = await user_pk(db, "physician2")
    reads = await events(db, "overdueFollowUps")
    assert {e.patient_id for e in reads if e.actor_id == physician2} == {pks[i] for i in GI}

    # A bad cursor is bad input.
    bad = await client.run(OVERDUE, {"first": 2, "after": "not-a-cursor"}, as_="physician")
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    # The `overdue` flag on the patient's follow-ups agrees with the list.
    flags = await client.data(
        "query ($id: ID!) { patient(id: $id) { followUps { id overdue dueDate status } } }",
        {"id": gid("Patient", pks[5])},
        as_="physician2",
    )
    flagged = sorted(
        (date.fromisoformat(f["dueDate"]), pk_of("FollowUp", f["id"]))
        for f in flags["patient"]["followUps"]
        if f["overdue"]
    )
    assert flagged == sorted(overdue_ids[5])


async def test_racing_writes_on_one_follow_up(client: GraphQLClient, db: Database) -> None:
    """An outcome and a cancellation sent at once: one wins, the other is a CONFLICT, never both."""
    pks = await patient_pks(db)
    await client.token("physician")
    await client.token("chief")
    follow_ups = await scheduled_follow_ups(client, db, pks[1]) + await scheduled_follow_ups(client, db, pks[2])
    for follow_up in follow_ups:
        cancel, outcome = await asyncio.gather(
            client.run(CANCEL, {"id": follow_up, "r": "患者失联"}, as_="physician"),
            client.run(OUTCOME, {"id": follow_up, "input": {"painScore": 3}}, as_="chief"),
        )
        assert sorted([error_codes(cancel), error_codes(outcome)]) == [[], ["CONFLICT"]], (cancel, outcome)
        row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", follow_up)))
        if error_codes(cancel):
            assert (row.status, row.pain_score, row.cancel_reason) == ("completed", 3, None)
        else:
            assert (row.status, row.pain_score, row.cancel_reason) == ("cancelled", None, "患者失联")
        assert row.version == 2


async def _stored(db: Database, follow_up_pk: int) -> tuple[Any, ...]:
    """Every column of the follow-up, and its amendments' ids."""
    async with db.session() as session:
        row = (await session.execute(select(*FollowUp.__table__.columns).where(FollowUp.id == follow_up_pk))).one()
        amendments = (
            await session.execute(
                select(Amendment.id).where(Amendment.entity_type == "FollowUp", Amendment.entity_id == follow_up_pk)
            )
        ).scalars()
        return tuple(row), tuple(amendments.all())


async def test_refused_outcomes_keep_nothing(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of reach (NOT_FOUND), cancelled (CONFLICT) or changed since it was read (CONFLICT: the version guard of
    the one UPDATE): the follow-up, its amendments and the success events stay as they were; the refusal is kept."""
    pks = await patient_pks(db)
    gi_follow_up = await one(db, select(FollowUp.id).where(FollowUp.patient_id == pks[5]).limit(1))
    first, second, _ = await scheduled_follow_ups(client, db, pks[2])
    await client.data(CANCEL, {"id": second, "r": "患者失联"}, as_="physician")
    successes = len(await events(db, "recordFollowUpOutcome", "success"))

    async def refused(follow_up: str, code: str) -> None:
        pk = pk_of("FollowUp", follow_up)
        before = await _stored(db, pk)
        refusals = len(await events(db, "recordFollowUpOutcome", code.lower()))
        result = await client.run(OUTCOME, {"id": follow_up, "input": {"painScore": 1}}, as_="physician")
        assert error_codes(result) == [code]
        assert await _stored(db, pk) == before
        assert len(await events(db, "recordFollowUpOutcome", code.lower())) == refusals + 1

    await refused(gid("FollowUp", gi_follow_up), "NOT_FOUND")
    await refused(second, "CONFLICT")
    # Another write came between the read and the UPDATE: the row read is one version behind the stored one.
    real_row = WriteUnit.row

    async def stale(self: WriteUnit, model: Any, row_id: int, **kwargs: Any) -> Any:
        row = await real_row(self, model, row_id, **kwargs)
        names = [column.name for column in model.__table__.columns]
        return type(row)(
            tuple(value - 1 if name == "version" else value for name, value in zip(names, row, strict=True))
        )

    monkeypatch.setattr(WriteUnit, "row", stale)
    await refused(first, "CONFLICT")
    monkeypatch.undo()
    assert len(await events(db, "recordFollowUpOutcome", "success")) == successes

    # Not refused: the answer is the row as stored, with one amendment of what changed.
    answer = (await client.data(OUTCOME, {"id": first, "input": {"painScore": 1}}, as_="physician"))[
        "recordFollowUpOutcome"
    ]
    async with db.session() as session:
        row = (await session.execute(select(FollowUp).where(FollowUp.id == pk_of("FollowUp", first)))).scalar_one()
        (amendment,) = (
            await session.execute(
                select(Amendment).where(
                    Amendment.entity_id == row.id, Amendment.entity_type == "FollowUp", Amendment.kind == "update"
                )
            )
        ).scalars()
    recorded_at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    assert datetime.fromisoformat(answer["recordedAt"]) == recorded_at
    assert (answer["status"], answer["painScore"], row.status, row.pain_score, row.version) == (
        "COMPLETED",
        1,
        "completed",
        1,
        2,
    )
    assert sorted(amendment.changes) == ["pain_score", "recorded_at", "recorded_by_id", "status"]
    assert amendment.changes["status"] == {"before": "scheduled", "after": "completed"}
