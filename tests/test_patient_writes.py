"""Registering, updating (versioned) and reassigning patients; bad input leaves nothing behind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.db import Database
from models.audit import Event
from models.patient import Patient
from tests.clinical_helpers import gid, patients_of, user_id
from tests.conftest import GraphQLClient, error_codes

REGISTER = """
mutation ($input: RegisterPatientInput!) {
  registerPatient(input: $input) { id name nameInitials gender birthDate version attendingPhysicianName departmentName }
}
"""
UPDATE = """
mutation ($id: ID!, $v: Int!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, version: $v, input: $input) { id name allergies version }
}
"""
REASSIGN = "mutation ($id: ID!, $to: ID!, $v: Int!) { reassignPatient(id: $id, physicianId: $to, version: $v) { attendingPhysicianName version } }"
VALID_ID = "11010519491231002X"


async def _count(db: Database, model: Any) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_physician_registers_and_attends(client: GraphQLClient, db: Database) -> None:
    data = await client.data(
        REGISTER,
        {
            "input": {
                "name": "欧阳秀英",
                "gender": "FEMALE",
                "birthDate": "1949-12-31",
                "idNumber": VALID_ID,
                "phone": "13712345678",
                "allergies": "青霉素",
                "consentScope": "treatment",
                "consentVersion": "2026.1",
            }
        },
        as_="physician",
    )
    patient = data["registerPatient"]
    assert patient["name"] == "欧阳秀英" and patient["nameInitials"] == "OYXY"
    assert patient["attendingPhysicianName"].startswith("陈医生")
    async with db.session() as session:
        row = (await session.execute(select(Patient).where(Patient.name == "欧阳秀英"))).scalar_one()
        created = (
            await session.execute(
                select(Event).where(Event.operation == "registerPatient", Event.action == "create")  # type: ignore[arg-type]
            )
        ).scalar_one()
    assert row.attending_physician_id == await user_id(db, "physician")
    assert row.id_number == VALID_ID and row.consent_version == "2026.1" and row.consent_at is not None
    assert created.outcome == "success" and created.patient_id == row.id


async def test_bad_input_is_refused_and_nothing_stored(client: GraphQLClient, db: Database) -> None:
    before = await _count(db, Patient)
    cases = [
        ({"name": "甲", "idNumber": "110105194912310021"}, "idNumber"),  # wrong check digit
        ({"name": "甲", "idNumber": "11010519491331002X"}, "idNumber"),  # month 13
        ({"name": "  "}, "name"),
        ({"name": "甲", "phone": "call me"}, "phone"),
        ({"name": "甲", "birthDate": "1850-01-01"}, "birthDate"),
    ]
    for values, field in cases:
        result = await client.run(REGISTER, {"input": values}, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"], values
        assert result["errors"][0]["extensions"].get("field") == field
    wrong_type = await client.run(REGISTER, {"input": {"name": 12}}, as_="physician")
    assert error_codes(wrong_type) == ["BAD_USER_INPUT"]
    assert await _count(db, Patient) == before


async def test_physician_cannot_register_into_another_department(client: GraphQLClient, db: Database) -> None:
    gi = (await patients_of(db, "physician2"))[0].department_id
    result = await client.run(
        REGISTER, {"input": {"name": "乙", "departmentId": gid("Department", gi)}}, as_="physician"
    )
    assert error_codes(result) == ["FORBIDDEN"]
    ok = await client.data(REGISTER, {"input": {"name": "乙", "departmentId": gid("Department", gi)}}, as_="admin")
    assert ok["registerPatient"]["departmentName"].startswith("消化内科")


async def test_update_with_a_stale_version_is_a_conflict(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    first = await client.data(UPDATE, {"id": pid, "v": own.version, "input": {"allergies": "花粉"}}, as_="physician")
    assert first["updatePatient"]["version"] == own.version + 1
    stale = await client.run(UPDATE, {"id": pid, "v": own.version, "input": {"allergies": "覆盖"}}, as_="chief")
    assert error_codes(stale) == ["CONFLICT"]
    async with db.session() as session:
        row = await session.get(Patient, own.id)
    assert row is not None and row.allergies == "花粉" and row.version == own.version + 1


async def test_update_out_of_scope_is_not_found(client: GraphQLClient, db: Database) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    result = await client.run(
        UPDATE, {"id": gid("Patient", stranger.id), "v": stranger.version, "input": {"name": "改名"}}, as_="physician"
    )
    assert error_codes(result) == ["NOT_FOUND"]
    async with db.session() as session:
        row = await session.get(Patient, stranger.id)
    assert row is not None and row.name == stranger.name


async def test_reassigning_belongs_to_chief_and_department_admin(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid, chief = gid("Patient", own.id), gid("User", await user_id(db, "chief"))
    refused = await client.run(REASSIGN, {"id": pid, "to": chief, "v": own.version}, as_="physician")
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    moved = await client.data(REASSIGN, {"id": pid, "to": chief, "v": own.version}, as_="chief")
    assert moved["reassignPatient"]["attendingPhysicianName"].startswith("张主任")
    # Not to a physician outside the chief's scope.
    outsider = gid("User", await user_id(db, "physician2"))
    result = await client.run(REASSIGN, {"id": pid, "to": outsider, "v": own.version + 1}, as_="deptadmin")
    assert error_codes(result) == ["NOT_FOUND"]
