"""Data scope on patients: lists, single reads, nested fields and write targets, for each role."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import Database
from models.audit import Event
from models.clinical import Visit
from models.patient import Patient
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

PATIENT_IDS = "{ patients(first: 100) { totalCount edges { node { id name } } } }"
PATIENT = "query ($id: ID!) { patient(id: $id) { id name visits { id diagnoses { icd10Code } } } }"
OVERDUE = "{ overdueFollowUps(first: 100) { edges { node { id patient { id name } } } } }"
RECORD_VISIT = """
mutation ($p: ID!) {
  recordVisit(input: {patientId: $p, visitDate: "2026-11-20", visitType: OUTPATIENT, chiefComplaint: "复诊",
                      diagnoses: [{icd10Code: "K64.1", isPrimary: true}]}) { id }
}
"""


async def _ids(client: GraphQLClient, username: str) -> set[str]:
    data = await client.data(PATIENT_IDS, as_=username)
    return {edge["node"]["id"] for edge in data["patients"]["edges"]}


async def test_each_role_lists_exactly_its_scope(client: GraphQLClient, db: Database) -> None:
    async with db.session() as session:
        everyone = {gid("Patient", pk) for pk in (await session.execute(select(Patient.id))).scalars()}
    own = {gid("Patient", p.id) for p in await patients_of(db, "physician")}
    gi = {gid("Patient", p.id) for p in await patients_of(db, "physician2")}
    assert await _ids(client, "admin") == everyone
    assert await _ids(client, "physician") == own
    assert await _ids(client, "physician2") == gi
    # Chief and department admin of Colorectal Surgery: the department and the clinic below it.
    assert await _ids(client, "chief") == everyone - gi
    assert await _ids(client, "deptadmin") == everyone - gi


async def test_physician_cannot_read_a_colleagues_patient_by_id(client: GraphQLClient, db: Database) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    result = await client.run(PATIENT, {"id": gid("Patient", stranger.id)}, as_="physician")
    assert error_codes(result) == ["NOT_FOUND"]
    assert result["data"] is None
    # The allowed side: their own physician reads the whole history.
    data = await client.data(PATIENT, {"id": gid("Patient", stranger.id)}, as_="physician2")
    assert data["patient"]["name"] == stranger.name
    assert data["patient"]["visits"][0]["diagnoses"]


async def test_unknown_and_malformed_ids_are_not_found(client: GraphQLClient) -> None:
    for bad in (gid("Patient", 999999), "not-an-id", gid("User", 1)):
        result = await client.run(PATIENT, {"id": bad}, as_="admin")
        assert error_codes(result) == ["NOT_FOUND"], bad


async def test_nested_follow_up_patient_stays_in_scope(client: GraphQLClient, db: Database) -> None:
    data = await client.data(OVERDUE, as_="physician")
    own = {gid("Patient", p.id) for p in await patients_of(db, "physician")}
    seen = {edge["node"]["patient"]["id"] for edge in data["overdueFollowUps"]["edges"]}
    assert seen <= own
    data2 = await client.data(OVERDUE, as_="physician2")
    seen2 = {edge["node"]["patient"]["id"] for edge in data2["overdueFollowUps"]["edges"]}
    assert not seen2 & own


async def test_writing_to_a_strangers_patient_is_not_found_and_widens_nothing(
    client: GraphQLClient, db: Database
) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    async with db.session() as session:
        visits_before = (await session.execute(select(func.count()).select_from(Visit))).scalar_one()
    result = await client.run(RECORD_VISIT, {"p": gid("Patient", stranger.id)}, as_="physician")
    assert error_codes(result) == ["NOT_FOUND"]
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Visit))).scalar_one() == visits_before
        refused = (
            (await session.execute(select(Event).where(Event.operation == "recordVisit").order_by(Event.id.desc())))
            .scalars()
            .first()
        )
    assert refused is not None and refused.outcome == "not_found"
    assert gid("Patient", stranger.id) not in await _ids(client, "physician")
    # The allowed side: recording a visit for one's own patient works.
    own = (await patients_of(db, "physician"))[0]
    await client.data(RECORD_VISIT, {"p": gid("Patient", own.id)}, as_="physician")


async def test_a_visit_brings_the_patient_into_the_physicians_scope(client: GraphQLClient, db: Database) -> None:
    """A physician who records a visit (a chief's patient, in scope for the chief) sees that patient after."""
    chief_patient = (await patients_of(db, "chief"))[0]
    pid = gid("Patient", chief_patient.id)
    assert pid not in await _ids(client, "physician")
    await client.data(RECORD_VISIT, {"p": pid}, as_="chief")
    assert pid not in await _ids(client, "physician")  # the chief's visit does not widen the physician
    async with db.transaction() as session:
        physician_id = (await patients_of(db, "physician"))[0].attending_physician_id
        session.add(
            Visit(patient_id=chief_patient.id, physician_id=physician_id, visit_date=chief_patient.created_at.date())
        )
    assert pid in await _ids(client, "physician")


async def test_patient_role_has_no_staff_queries(client: GraphQLClient) -> None:
    result = await client.run(PATIENT_IDS, as_="patient")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    record = await client.data("{ myRecord { name visits { visitDate } } }", as_="patient")
    assert record["myRecord"]["name"]
