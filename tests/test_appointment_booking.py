"""Booking and every status change after it, through the API as each role: places counted in the database, one
place per patient per session, the allowed transitions with their history, the patient's own booking and
cancellation window, scope (out of reach is NOT_FOUND), masking and audited reads of appointment lists."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from sqlalchemy import select, update

from core.db import Database
from models.appointment import Appointment, Schedule
from models.audit import Event
from models.patient import Patient
from tests.appointment_helpers import (
    BOOK,
    CANCEL,
    CANCEL_MINE,
    CHECK_IN,
    COMPLETE,
    CONFIRM,
    MISSED,
    SCHEDULE,
    appointments_of,
    gid,
    history_count,
    make_schedule,
    patient_of,
    schedule_row,
)
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes

APPOINTMENTS = """query ($f: AppointmentFilter, $first: Int, $after: String) {
  appointments(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status slotAt patient { id name phone } schedule { id physicianName } } }
  }
}"""
MY = "{ myAppointments { id status place slotAt schedule { id day location } history { toStatus } } }"
SCHEDULES = """query ($f: ScheduleFilter) { schedules(filter: $f, first: 100) { totalCount
  edges { node { id day session capacity booked free status physicianName departmentName } } } }"""
AVAILABILITY = "query ($d: ID!, $from: Date!, $to: Date!) { availability(departmentId: $d, from: $from, to: $to) { day session sessions capacity free } }"


async def test_staff_book_a_place_counted_in_the_database(client: GraphQLClient, db: Database) -> None:
    schedule = await make_schedule(db, capacity=2, start=time(18, 0), end=time(19, 0))
    patient = await patient_of(db, "physician")
    variables = {"input": {"patientId": gid("Patient", patient), "scheduleId": gid("Schedule", schedule)}}
    booked = (await client.data(SCHEDULE, variables, as_="physician"))["scheduleAppointment"]
    assert booked["status"] == "BOOKED" and booked["place"] == 1 and booked["bookedVia"] == "STAFF"
    assert booked["history"][0]["toStatus"] == "BOOKED" and booked["history"][0]["by"].startswith("陈医生")
    row = await schedule_row(db, schedule)
    assert row.booked == 1
    [stored] = await appointments_of(db, schedule)
    assert stored.patient_id == patient and stored.active == 1 and stored.booked_by_id == await user_id(db, "physician")

    # the same patient twice in one session: CONFLICT, nothing written, the count unchanged
    again = await client.run(SCHEDULE, variables, as_="physician")
    assert error_codes(again) == ["CONFLICT"]
    assert (await schedule_row(db, schedule)).booked == 1 and len(await appointments_of(db, schedule)) == 1

    # the second place goes to another patient (a later slot); then the session is full
    other = await patient_of(db, "physician", index=1)
    second = (
        await client.data(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", other), "scheduleId": gid("Schedule", schedule)}},
            as_="admin",
        )
    )["scheduleAppointment"]
    assert second["place"] == 2 and second["slotAt"] > booked["slotAt"]
    third = await patient_of(db, "physician", index=2)
    full = await client.run(
        SCHEDULE, {"input": {"patientId": gid("Patient", third), "scheduleId": gid("Schedule", schedule)}}, as_="admin"
    )
    assert error_codes(full) == ["CONFLICT"] and "No place" in full["errors"][0]["message"]
    assert (await schedule_row(db, schedule)).booked == 2

    # cancelling frees the place (with a reason), and the third patient gets it
    no_reason = await client.run(CANCEL, {"id": booked["id"], "r": "  "}, as_="physician")
    assert error_codes(no_reason) == ["BAD_USER_INPUT"]
    cancelled = (await client.data(CANCEL, {"id": booked["id"], "r": "患者改期"}, as_="physician"))["cancelAppointment"]
    assert cancelled == {"id": booked["id"], "status": "CANCELLED", "cancelReason": "患者改期"}
    assert (await schedule_row(db, schedule)).booked == 1
    freed = (
        await client.data(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", third), "scheduleId": gid("Schedule", schedule)}},
            as_="admin",
        )
    )["scheduleAppointment"]
    assert freed["place"] == 1
    assert (await schedule_row(db, schedule)).booked == 2


async def test_transitions_follow_the_rules_with_history(client: GraphQLClient, db: Database) -> None:
    schedule = await make_schedule(db)
    patient = await patient_of(db, "physician")
    booked = (
        await client.data(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", patient), "scheduleId": gid("Schedule", schedule)}},
            as_="physician",
        )
    )["scheduleAppointment"]
    aid = booked["id"]
    # not allowed: completing before check-in, confirming what is already booked
    assert error_codes(await client.run(COMPLETE, {"id": aid}, as_="physician")) == ["CONFLICT"]
    assert error_codes(await client.run(CONFIRM, {"id": aid}, as_="physician")) == ["CONFLICT"]
    assert (await client.data(CHECK_IN, {"id": aid}, as_="physician"))["checkInAppointment"]["status"] == "CHECKED_IN"
    assert error_codes(await client.run(CANCEL, {"id": aid, "r": "x"}, as_="physician")) == ["CONFLICT"]
    assert error_codes(await client.run(MISSED, {"id": aid}, as_="physician")) == ["CONFLICT"]
    done = (await client.data(COMPLETE, {"id": aid, "n": "术后恢复好"}, as_="physician"))["completeAppointment"]
    assert done["status"] == "COMPLETED" and done["followUpId"] is None
    assert await history_count(db, int(_pk(aid))) == 3
    # a finished appointment moves no more; its place stays counted
    assert error_codes(await client.run(CHECK_IN, {"id": aid}, as_="physician")) == ["CONFLICT"]
    assert (await schedule_row(db, schedule)).booked == 1

    other = await patient_of(db, "physician", index=1)
    second = (
        await client.data(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", other), "scheduleId": gid("Schedule", schedule)}},
            as_="physician",
        )
    )["scheduleAppointment"]
    assert (await client.data(MISSED, {"id": second["id"]}, as_="physician"))["markAppointmentMissed"][
        "status"
    ] == "MISSED"
    events = await _events(db, "markAppointmentMissed")  # the refused attempt above is recorded too
    assert [e.outcome for e in events] == ["conflict", "success"] and events[1].patient_id == other


async def test_a_full_session_is_refused_without_waiting_for_its_row(client: GraphQLClient, db: Database) -> None:
    """Once the session is full, a booking is answered CONFLICT from the committed count, without the conditional
    update that would queue on the session's row lock behind the bookings in flight; the refusal is recorded."""
    from sqlalchemy import event as sa_event

    schedule = await make_schedule(db, capacity=1, start=time(18, 0), end=time(19, 0))
    first, second = [await patient_of(db, "physician", index=i) for i in range(2)]
    booked = await client.run(
        SCHEDULE, {"input": {"patientId": gid("Patient", first), "scheduleId": gid("Schedule", schedule)}}, as_="admin"
    )
    assert "errors" not in booked
    seen: list[str] = []
    engines = {client.services.db.engine, getattr(client.services.db, "read_engine", client.services.db.engine)}
    listener = lambda *args: seen.append(str(args[2]))  # noqa: E731
    for engine in engines:
        sa_event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        full = await client.run(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", second), "scheduleId": gid("Schedule", schedule)}},
            as_="admin",
        )
    finally:
        for engine in engines:
            sa_event.remove(engine.sync_engine, "before_cursor_execute", listener)
    assert error_codes(full) == ["CONFLICT"] and "No place" in full["errors"][0]["message"]
    assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE SCHEDULE")]
    assert (await schedule_row(db, schedule)).booked == 1 and len(await appointments_of(db, schedule)) == 1
    refused = [e for e in await _events(db, "scheduleAppointment") if e.outcome == "conflict"]
    assert refused and refused[-1].entity_type == "Appointment"


def _pk(global_id: str) -> str:
    import base64

    return base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().split(":")[1]


async def _events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))
        return list(rows.scalars().all())


async def test_out_of_scope_is_not_found_and_patients_cannot_use_staff_mutations(
    client: GraphQLClient, db: Database
) -> None:
    schedule = await make_schedule(db)
    gastro_patient = await patient_of(db, "physician2")
    variables = {"input": {"patientId": gid("Patient", gastro_patient), "scheduleId": gid("Schedule", schedule)}}
    assert error_codes(await client.run(SCHEDULE, variables, as_="physician")) == ["NOT_FOUND"]
    assert await appointments_of(db, schedule) == []
    assert (await schedule_row(db, schedule)).booked == 0
    # physician2 books their own patient; the Colorectal physician cannot see nor change that appointment
    own = (await client.data(SCHEDULE, variables, as_="physician2"))["scheduleAppointment"]
    assert error_codes(await client.run(CHECK_IN, {"id": own["id"]}, as_="physician")) == ["NOT_FOUND"]
    assert error_codes(await client.run(CANCEL, {"id": own["id"], "r": "x"}, as_="physician")) == ["NOT_FOUND"]
    listed = await client.data(APPOINTMENTS, {"f": {"patientId": None}, "first": 100}, as_="physician")
    ids = {edge["node"]["id"] for edge in listed["appointments"]["edges"]}
    assert own["id"] not in ids
    refused = await client.run(APPOINTMENTS, {"f": {"patientId": gid("Patient", gastro_patient)}}, as_="physician")
    assert error_codes(refused) == ["NOT_FOUND"]
    # staff mutations and the staff list are not in a patient's schema
    for document, values in ((SCHEDULE, variables), (CHECK_IN, {"id": own["id"]}), (APPOINTMENTS, {})):
        assert set(error_codes(await client.run(document, values, as_="patient"))) == {"GRAPHQL_VALIDATION_FAILED"}
    # nor the patient's own booking in a physician's
    assert error_codes(await client.run(BOOK, {"s": gid("Schedule", schedule)}, as_="physician")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]


async def test_appointment_lists_are_masked_and_audited(client: GraphQLClient, db: Database) -> None:
    data = await client.data(APPOINTMENTS, {"first": 50}, as_="physician")
    edges = data["appointments"]["edges"]
    assert edges, "the demo has appointments of the physician's patients"
    phones = [edge["node"]["patient"]["phone"] for edge in edges if edge["node"]["patient"]["phone"]]
    assert phones and all("****" in phone for phone in phones)
    admin = await client.data(APPOINTMENTS, {"first": 50}, as_="admin")
    assert any("****" not in (e["node"]["patient"]["phone"] or "****") for e in admin["appointments"]["edges"])
    slots = [edge["node"]["slotAt"] for edge in edges]
    assert slots == sorted(slots)
    reads = [event for event in await _events(db, "appointments") if event.actor_id == await user_id(db, "physician")]
    patients = {edge["node"]["patient"]["id"] for edge in edges}
    assert {gid("Patient", event.patient_id) for event in reads} == patients
    # pages chain without gaps or repeats
    first = await client.data(APPOINTMENTS, {"first": 3}, as_="admin")
    after = first["appointments"]["pageInfo"]["endCursor"]
    second = await client.data(APPOINTMENTS, {"first": 3, "after": after}, as_="admin")
    all_ids = [
        e["node"]["id"] for e in (await client.data(APPOINTMENTS, {"first": 6}, as_="admin"))["appointments"]["edges"]
    ]
    paged = [e["node"]["id"] for e in first["appointments"]["edges"] + second["appointments"]["edges"]]
    assert paged == all_ids
    cancelled = await client.data(APPOINTMENTS, {"f": {"status": "CANCELLED"}, "first": 100}, as_="admin")
    assert all(e["node"]["status"] == "CANCELLED" for e in cancelled["appointments"]["edges"])


async def test_schedules_and_availability(client: GraphQLClient, db: Database) -> None:
    schedule = await make_schedule(db, capacity=3, days_ahead=3)
    full = await make_schedule(db, capacity=2, booked=2, days_ahead=3, start=time(21, 0), end=time(22, 0))
    crs = gid("Department", (await schedule_row(db, schedule)).department_id)
    from tests.appointment_helpers import today

    day = (today()).isoformat()
    later = (await schedule_row(db, schedule)).day.isoformat()
    listed = await client.data(SCHEDULES, {"f": {"departmentId": crs, "from": later, "to": later}}, as_="patient")
    nodes = {edge["node"]["id"]: edge["node"] for edge in listed["schedules"]["edges"]}
    assert nodes[gid("Schedule", schedule)]["free"] == 3 and nodes[gid("Schedule", full)]["free"] == 0
    open_only = await client.data(
        SCHEDULES, {"f": {"departmentId": crs, "from": later, "to": later, "hasAvailability": True}}, as_="physician"
    )
    assert gid("Schedule", full) not in {edge["node"]["id"] for edge in open_only["schedules"]["edges"]}
    free = (await client.data(AVAILABILITY, {"d": crs, "from": day, "to": later}, as_="patient"))["availability"]
    mine = [item for item in free if item["day"] == later and item["session"] == "CUSTOM"]
    assert mine and mine[0]["free"] >= 3 and mine[0]["sessions"] >= 2
    bad = await client.run(AVAILABILITY, {"d": crs, "from": later, "to": day}, as_="patient")
    assert error_codes(bad) == ["BAD_USER_INPUT"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"appointment_cancel_hours": 48}


async def test_the_patient_books_and_cancels_within_the_window(client: GraphQLClient, db: Database) -> None:
    soon = await make_schedule(db, days_ahead=1, capacity=5)
    later = await make_schedule(db, days_ahead=6, capacity=5)
    me = await _my_patient(db)
    booked = (await client.data(BOOK, {"s": gid("Schedule", later), "reason": "复查"}, as_="patient"))[
        "bookAppointment"
    ]
    assert booked["status"] == "REQUESTED" and booked["bookedVia"] == "PATIENT" and booked["reason"] == "复查"
    [stored] = await appointments_of(db, later)
    assert stored.patient_id == me and (await schedule_row(db, later)).booked == 1
    mine = (await client.data(MY, as_="patient"))["myAppointments"]
    assert booked["id"] in {item["id"] for item in mine}
    async with db.session() as session:  # the patient's own list is an audited read of their record too
        reads = (
            await session.execute(
                select(Event.entity_id).where(Event.action == "read", Event.operation == "myAppointments")  # type: ignore[arg-type]
            )
        ).scalars()
        assert list(reads) == [str(me)]
    # twice in one session: CONFLICT
    assert error_codes(await client.run(BOOK, {"s": gid("Schedule", later)}, as_="patient")) == ["CONFLICT"]
    # staff confirm it
    assert (await client.data(CONFIRM, {"id": booked["id"]}, as_="physician"))["confirmAppointment"][
        "status"
    ] == "BOOKED"
    # within 48 hours of the session the patient cannot cancel online
    near = (await client.data(BOOK, {"s": gid("Schedule", soon)}, as_="patient"))["bookAppointment"]
    refused = await client.run(CANCEL_MINE, {"id": near["id"]}, as_="patient")
    assert error_codes(refused) == ["CONFLICT"] and "48 hours" in refused["errors"][0]["message"]
    assert (await schedule_row(db, soon)).booked == 1
    cancelled = (await client.data(CANCEL_MINE, {"id": booked["id"], "r": "出差"}, as_="patient"))[
        "cancelMyAppointment"
    ]
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelReason"] == "出差"
    assert (await schedule_row(db, later)).booked == 0
    # another patient's appointment is not theirs to cancel
    other = await patient_of(db, "physician", index=1)
    assert other != me
    theirs = (
        await client.data(
            SCHEDULE,
            {"input": {"patientId": gid("Patient", other), "scheduleId": gid("Schedule", later)}},
            as_="physician",
        )
    )["scheduleAppointment"]
    assert error_codes(await client.run(CANCEL_MINE, {"id": theirs["id"]}, as_="patient")) == ["NOT_FOUND"]


async def _my_patient(db: Database) -> int:
    uid = await user_id(db, "patient")
    async with db.session() as session:
        return int((await session.execute(select(Patient.id).where(Patient.wechat_user_id == uid))).scalar_one())


async def test_closed_cancelled_and_past_sessions_take_no_booking(client: GraphQLClient, db: Database) -> None:
    schedule = await make_schedule(db)
    async with db.transaction() as session:
        await session.execute(update(Schedule).where(Schedule.id == schedule).values(status="closed"))
    assert error_codes(await client.run(BOOK, {"s": gid("Schedule", schedule)}, as_="patient")) == ["CONFLICT"]
    past = await make_schedule(db, days_ahead=-1)
    assert error_codes(await client.run(BOOK, {"s": gid("Schedule", past)}, as_="patient")) == ["CONFLICT"]
    assert error_codes(await client.run(BOOK, {"s": gid("Schedule", 999999)}, as_="patient")) == ["NOT_FOUND"]
    async with db.session() as session:
        count = (
            await session.execute(select(Appointment.id).where(Appointment.schedule_id.in_([schedule, past])))
        ).all()
    assert count == []


async def test_implausible_dates_and_a_file_sent_as_json_are_bad_input(client: GraphQLClient) -> None:
    far = await client.run(APPOINTMENTS, {"f": {"from": "2026-01-01", "to": "9999-12-31"}}, as_="admin")
    assert error_codes(far) == ["BAD_USER_INPUT"]
    long = await client.run(APPOINTMENTS, {"f": {"from": "2026-01-01", "to": "2026-12-31"}}, as_="admin")
    assert error_codes(long) == ["BAD_USER_INPUT"]
    not_a_file = await client.run(
        "mutation ($f: Upload!) { importSchedules(file: $f) { written } }", {"f": "plan.csv"}, as_="admin"
    )
    assert error_codes(not_a_file) == ["BAD_USER_INPUT"]
