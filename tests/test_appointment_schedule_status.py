"""A session's own status: closing it to new bookings and reopening it (per role, audited, its bookings kept), and
cancelling a session with many bookings in a constant number of statements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.appointment import Appointment, AppointmentStatusChange, Schedule
from models.audit import Event
from models.consultation import Conversation, Message
from models.patient import Patient
from models.user import User
from tests.appointment_helpers import (
    BOOK,
    CANCEL_SCHEDULE,
    SCHEDULE,
    appointments_of,
    free_patient_of,
    gid,
    make_schedule,
    schedule_row,
)
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes
from tests.test_patient_queries import StatementCounter

CLOSE = "mutation ($id: ID!, $r: String) { closeSchedule(id: $id, reason: $r) { id status booked version } }"
REOPEN = "mutation ($id: ID!) { reopenSchedule(id: $id) { id status booked version } }"


async def _book(client: GraphQLClient, db: Database, schedule: int, as_: str = "chief") -> dict[str, Any]:
    patient = await free_patient_of(db, "physician", schedule)
    variables = {"input": {"patientId": gid("Patient", patient), "scheduleId": gid("Schedule", schedule)}}
    return await client.run(SCHEDULE, variables, as_=as_)


async def _events(db: Database, operation: str, schedule: int) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(
            select(Event).where(Event.operation == operation, Event.entity_id == str(schedule)).order_by(Event.id)
        )
        return list(rows.scalars().all())


async def test_closing_refuses_new_bookings_keeps_the_old_and_reopening_takes_them_again(
    client: GraphQLClient, db: Database
) -> None:
    schedule = await make_schedule(db, physician="physician", capacity=5)
    first = await _book(client, db, schedule)
    assert "errors" not in first
    sid = gid("Schedule", schedule)
    # physicians and patients have no such mutations; another department's session is out of the chief's reach
    for role in ("physician", "patient"):
        for document, variables in ((CLOSE, {"id": sid}), (REOPEN, {"id": sid})):
            assert error_codes(await client.run(document, variables, as_=role)) == ["GRAPHQL_VALIDATION_FAILED"]
    gi = await make_schedule(db, physician="physician2", department="GI")
    assert error_codes(await client.run(CLOSE, {"id": gid("Schedule", gi)}, as_="chief")) == ["NOT_FOUND"]
    assert (await schedule_row(db, gi)).status == "open"
    async with db.session() as session:  # the refusal is recorded (by whom, the code), the session untouched
        refusals = (
            (
                await session.execute(
                    select(Event.outcome).where(
                        Event.operation == "closeSchedule", Event.actor_id == await user_id(db, "chief")
                    )
                )
            )
            .scalars()
            .all()
        )
    assert list(refusals) == ["not_found"]

    closed = (await client.data(CLOSE, {"id": sid, "r": "医生外出会诊"}, as_="chief"))["closeSchedule"]
    assert closed["status"] == "CLOSED" and closed["booked"] == 1
    # its booking stands; new bookings are refused, by staff and from the mini-program alike
    assert [row.status for row in await appointments_of(db, schedule)] == ["booked"]
    assert error_codes(await _book(client, db, schedule)) == ["CONFLICT"]
    assert error_codes(await client.run(BOOK, {"s": sid}, as_="patient")) == ["CONFLICT"]
    assert (await schedule_row(db, schedule)).booked == 1
    # closing twice, or reopening an open session, is a CONFLICT
    assert error_codes(await client.run(CLOSE, {"id": sid}, as_="chief")) == ["CONFLICT"]
    [event] = await _events(db, "closeSchedule", schedule)
    assert event.actor_id == await user_id(db, "chief") and event.action == "update"
    assert event.detail == {"from": "open", "to": "closed", "booked": 1, "reason": "医生外出会诊"}

    reopened = (await client.data(REOPEN, {"id": sid}, as_="admin"))["reopenSchedule"]
    assert reopened["status"] == "OPEN" and reopened["version"] == closed["version"] + 1
    assert error_codes(await client.run(REOPEN, {"id": sid}, as_="chief")) == ["CONFLICT"]
    assert "errors" not in await _book(client, db, schedule)
    assert (await schedule_row(db, schedule)).booked == 2
    assert len(await _events(db, "reopenSchedule", schedule)) == 1

    # a closed session can still be cancelled; a cancelled one neither reopens nor closes
    await client.data(CLOSE, {"id": sid}, as_="chief")
    await client.data(CANCEL_SCHEDULE, {"id": sid, "r": "停诊"}, as_="chief")
    assert error_codes(await client.run(REOPEN, {"id": sid}, as_="chief")) == ["CONFLICT"]
    assert error_codes(await client.run(CLOSE, {"id": sid}, as_="chief")) == ["CONFLICT"]


async def test_a_physician_manages_no_session_even_their_own(client: GraphQLClient, db: Database) -> None:
    own = await make_schedule(db, physician="physician")
    assert error_codes(await client.run(CLOSE, {"id": gid("Schedule", own)}, as_="physician")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    assert (await schedule_row(db, own)).status == "open"


async def _booked_session(db: Database, patients: int, hour: int) -> tuple[int, list[int]]:
    """A session with `patients` booked places, each patient bound to a mini-program account of their own (so each
    is told), booked directly in the database."""
    from datetime import time

    schedule = await make_schedule(db, physician="chief", capacity=patients, start=time(hour, 0), end=time(hour, 50))
    async with db.transaction() as session:
        found = await session.execute(
            select(Patient)
            .where(Patient.wechat_user_id.is_(None), Patient.merged_into_id.is_(None))
            .order_by(Patient.id.desc())
        )
        chosen: list[Patient] = list(found.scalars().all()[:patients])
        for place, patient in enumerate(chosen, start=1):
            account = User(username=f"wx{schedule}x{place}", display_name=f"微信{place}")
            session.add(account)
            await session.flush()
            patient.wechat_user_id = account.id
            session.add(
                Appointment(
                    patient_id=patient.id, booked_for_id=patient.id, schedule_id=schedule, place=place,
                    slot_at=datetime.now(UTC), status="booked", active=1,
                )
            )  # fmt: skip
        row = (await session.execute(select(Schedule).where(Schedule.id == schedule))).scalar_one()
        row.booked = len(chosen)
    assert len(chosen) == patients, len(chosen)
    return schedule, [int(patient.id) for patient in chosen]  # type: ignore[arg-type]


async def test_cancelling_costs_the_same_statements_for_two_patients_as_for_eight(
    client: GraphQLClient, db: Database
) -> None:
    token = await client.token("chief")
    warm, _ = await _booked_session(db, 1, 5)
    small, _ = await _booked_session(db, 2, 6)
    large, patients = await _booked_session(db, 8, 7)
    counts, statements = {}, {}
    for schedule, size in ((warm, 1), (small, 2), (large, 8)):  # the first one fills the process's caches
        with StatementCounter(client) as counter:
            done = (await client.data(CANCEL_SCHEDULE, {"id": gid("Schedule", schedule), "r": "停诊"}, token=token))[
                "cancelSchedule"
            ]
        assert (done["cancelledAppointments"], done["notifiedPatients"]) == (size, size)
        counts[size], statements[size] = counter.count, counter.statements
        assert counter.sealing <= 10, counter.sealing  # one seal step of the write's event
    assert counts[2] == counts[8] <= 25, (counts, statements[2], statements[8])
    # each of the eight cancelled with a line of history, told once in a conversation pointing at that message
    stored = await appointments_of(db, large)
    assert [(row.status, row.active, row.cancel_reason) for row in stored] == [("cancelled", None, "停诊")] * 8
    async with db.session() as session:
        history = (
            await session.execute(
                select(AppointmentStatusChange.from_status, AppointmentStatusChange.to_status).where(
                    AppointmentStatusChange.appointment_id.in_([row.id for row in stored])
                )
            )
        ).all()
        assert sorted(history) == [("booked", "cancelled")] * 8
        conversations = (
            (await session.execute(select(Conversation).where(Conversation.patient_id.in_(patients)))).scalars().all()
        )
        assert len(conversations) == 8
        for conversation in conversations:
            messages = (
                (await session.execute(select(Message).where(Message.conversation_id == conversation.id)))
                .scalars()
                .all()
            )
            assert len(messages) == 1 and messages[0].kind == "system" and "停诊" in messages[0].body
            assert conversation.last_message_id == messages[0].id
            assert messages[0].recipient_id == conversation.patient_user_id
