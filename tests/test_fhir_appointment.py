"""Appointments in FHIR as the field decision says, per role: the physician's name on the Appointment and on the
Schedule's actor only where the role's schema shows `Schedule.physicianName`, and a Slot's busy/free only from an
appointment status the role is shown."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from models.user import User
from tests.appointment_helpers import CANCEL, SCHEDULE, gid, make_schedule, patient_of
from tests.conftest import GraphQLClient
from tests.test_fhir_bundle import _bundle, of_type

GRANT = (
    "mutation ($r: String!, $o: String!, $a: String!) { grantPermission(roleKey: $r, object: $o, action: $a) { key } }"
)
REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)
FIELDS = "query ($t: String!) { __type(name: $t) { fields { name } } }"
STAFF = ("physician", "chief", "admin")


async def _withhold(client: GraphQLClient, type_name: str, field: str, *, keep_for: str) -> None:
    """Take `Type.field` from the physician role (every other field of the type stays), and give it back to the
    `keep_for` role alone (those inheriting from it keep it too)."""
    fields = (await client.data(FIELDS, {"t": type_name}, as_="admin"))["__type"]["fields"]
    await client.data(REVOKE, {"r": "physician", "o": f"{type_name}.*", "a": "read"}, as_="admin")
    for name in (f["name"] for f in fields if f["name"] != field):
        await client.data(GRANT, {"r": "physician", "o": f"{type_name}.{name}", "a": "read"}, as_="admin")
    await client.data(GRANT, {"r": keep_for, "o": f"{type_name}.{field}", "a": "read"}, as_="admin")


async def _booked(client: GraphQLClient, db: Database) -> tuple[int, dict[str, Any], str]:
    """A physician's patient booked in their session: (patient, the appointment, the physician's display name)."""
    schedule = await make_schedule(db, physician="physician")
    patient = await patient_of(db, "physician")
    variables = {"input": {"patientId": gid("Patient", patient), "scheduleId": gid("Schedule", schedule)}}
    booked = (await client.data(SCHEDULE, variables, as_="chief"))["scheduleAppointment"]
    async with db.session() as session:
        name = (await session.execute(select(User.display_name).where(User.username == "physician"))).scalar_one()
    return patient, booked, name


def _appointment_and_schedule(resources: list[dict[str, Any]], pk: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from tests.test_appointment_sessions import _pk

    appointment = next(a for a in of_type(resources, "Appointment") if a["id"] == _pk(pk))
    slot = next(s for s in of_type(resources, "Slot") if s["id"] == _pk(pk))
    schedule_id = slot["schedule"]["reference"].removeprefix("Schedule/")
    schedule = next(s for s in of_type(resources, "Schedule") if s["id"] == schedule_id)
    return appointment, schedule


async def test_the_physicians_name_follows_schedule_physician_name_per_role(
    client: GraphQLClient, db: Database
) -> None:
    patient, booked, name = await _booked(client, db)
    for role in STAFF:  # by default every staff role's schema shows the session's physician by name
        appointment, schedule = _appointment_and_schedule(await _bundle(client, patient, role), booked["id"])
        assert appointment["participant"][1]["actor"]["display"] == name, role
        assert schedule["actor"][0]["display"] == name, role

    await _withhold(client, "Schedule", "physicianName", keep_for="chief_physician")
    appointment, schedule = _appointment_and_schedule(await _bundle(client, patient, "physician"), booked["id"])
    practitioner = appointment["participant"][1]["actor"]
    assert "display" not in practitioner and practitioner["identifier"]["value"]  # who, by id only
    assert "display" not in schedule["actor"][0] and schedule["actor"][0]["identifier"] == practitioner["identifier"]
    for role in ("chief", "admin"):  # the chief physician's role holds it again, and the admin inherits it
        appointment, schedule = _appointment_and_schedule(await _bundle(client, patient, role), booked["id"])
        assert appointment["participant"][1]["actor"]["display"] == name, role
        assert schedule["actor"][0]["display"] == name, role


async def test_a_slots_busy_or_free_is_the_appointment_status_the_role_sees(
    client: GraphQLClient, db: Database
) -> None:
    patient, booked, _ = await _booked(client, db)
    await client.data(CANCEL, {"id": booked["id"], "r": "患者改期"}, as_="chief")
    for role in STAFF:
        resources = await _bundle(client, patient, role)
        appointment, _ = _appointment_and_schedule(resources, booked["id"])
        slot = next(s for s in of_type(resources, "Slot") if s["id"] == appointment["id"])
        assert (appointment["status"], slot["status"]) == ("cancelled", "free"), role

    await _withhold(client, "Appointment", "status", keep_for="chief_physician")
    resources = await _bundle(client, patient, "physician")
    appointment, _ = _appointment_and_schedule(resources, booked["id"])
    slot = next(s for s in of_type(resources, "Slot") if s["id"] == appointment["id"])
    # a status the physician is not shown: neither the Appointment nor its Slot tells it was cancelled
    assert (appointment["status"], slot["status"]) == ("booked", "busy")
    for role in ("chief", "admin"):
        resources = await _bundle(client, patient, role)
        appointment, _ = _appointment_and_schedule(resources, booked["id"])
        slot = next(s for s in of_type(resources, "Slot") if s["id"] == appointment["id"])
        assert (appointment["status"], slot["status"]) == ("cancelled", "free"), role
