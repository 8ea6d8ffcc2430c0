"""Around the appointments: cancelling a session (a reason when booked, every booked patient told in their
consultation, all or nothing), booking a due follow-up in one step and recording its outcome after the visit,
the scheduler's jobs (missed after the session, reminders the day before, both idempotent), and merges and the
patient's export carrying appointments."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from models.appointment import Appointment, AppointmentStatusChange, Schedule
from models.clinical import FollowUp
from models.consultation import Conversation, Message
from models.patient import Patient
from tests.appointment_helpers import (
    CANCEL_SCHEDULE,
    CHECK_IN,
    COMPLETE,
    SCHEDULE,
    appointments_of,
    gid,
    make_schedule,
    patient_of,
    schedule_row,
    today,
)
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes
from tests.operations_helpers import SCHEDULER_ON
from tests.test_operations_system import run_job

BOOK_FOLLOW_UP = """mutation ($f: ID!, $s: ID!) { bookFollowUp(followUpId: $f, scheduleId: $s) {
  id kind status followUpId } }"""
OUTCOME = """mutation ($id: ID!, $input: FollowUpOutcomeInput!) { recordFollowUpOutcome(followUpId: $id, input: $input) {
  id status painScore } }"""
MERGE = "mutation ($k: ID!, $m: ID!, $r: String!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id moved } }"
UNMERGE = "mutation ($id: ID!, $r: String!) { unmergePatients(mergeId: $id, reason: $r) { undoneAt } }"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(SCHEDULER_ON)


async def _book(client: GraphQLClient, patient: int, schedule: int, as_: str = "admin") -> dict[str, Any]:
    variables = {"input": {"patientId": gid("Patient", patient), "scheduleId": gid("Schedule", schedule)}}
    booked: dict[str, Any] = (await client.data(SCHEDULE, variables, as_=as_))["scheduleAppointment"]
    return booked


async def _my_patient(db: Database) -> int:
    uid = await user_id(db, "patient")
    async with db.session() as session:
        return int((await session.execute(select(Patient.id).where(Patient.wechat_user_id == uid))).scalar_one())


async def _system_messages(db: Database, patient_user: int) -> list[Message]:
    async with db.session() as session:
        rows = await session.execute(
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.patient_user_id == patient_user, Message.kind == "system")
            .order_by(Message.id)
        )
        return list(rows.scalars().all())


async def test_cancelling_a_booked_session_needs_a_reason_and_tells_the_patients(
    client: GraphQLClient, db: Database
) -> None:
    schedule = await make_schedule(db, physician="physician", capacity=5)
    me = await _my_patient(db)
    other = await patient_of(db, "physician", index=1)
    first = await _book(client, me, schedule)
    second = await _book(client, other, schedule)
    patient_user = await user_id(db, "patient")
    before = len(await _system_messages(db, patient_user))
    # a physician has no such mutation; the Gastroenterology physician's session is outside the chief's reach
    assert set(
        error_codes(await client.run(CANCEL_SCHEDULE, {"id": gid("Schedule", schedule), "r": "x"}, as_="physician"))
    ) == {"GRAPHQL_VALIDATION_FAILED"}
    gi = await make_schedule(db, physician="physician2", department="GI")
    assert error_codes(await client.run(CANCEL_SCHEDULE, {"id": gid("Schedule", gi), "r": "x"}, as_="chief")) == [
        "NOT_FOUND"
    ]
    # booked: a reason is required, and without one nothing changes
    refused = await client.run(CANCEL_SCHEDULE, {"id": gid("Schedule", schedule)}, as_="chief")
    assert error_codes(refused) == ["BAD_USER_INPUT"] and refused["errors"][0]["extensions"]["field"] == "reason"
    assert (await schedule_row(db, schedule)).status == "open"
    assert all(row.status == "booked" for row in await appointments_of(db, schedule))
    done = (await client.data(CANCEL_SCHEDULE, {"id": gid("Schedule", schedule), "r": "医生临时出诊"}, as_="chief"))[
        "cancelSchedule"
    ]
    assert done["cancelledAppointments"] == 2 and done["notifiedPatients"] == 1  # only one patient is on the app
    assert done["schedule"]["status"] == "CANCELLED" and done["schedule"]["cancelReason"] == "医生临时出诊"
    assert done["schedule"]["booked"] == 0 and done["schedule"]["free"] == 0
    stored = await appointments_of(db, schedule)
    assert [row.status for row in stored] == ["cancelled", "cancelled"] and all(row.active is None for row in stored)
    assert {row.id for row in stored} == {int(_pk(first["id"])), int(_pk(second["id"]))}
    told = await _system_messages(db, patient_user)
    assert len(told) == before + 1 and "医生临时出诊" in told[-1].body and told[-1].recipient_id == patient_user
    async with db.session() as session:
        conversation = (
            await session.execute(select(Conversation).where(Conversation.id == told[-1].conversation_id))
        ).scalar_one()
    assert conversation.physician_id == await user_id(db, "physician") and conversation.last_message_id == told[-1].id
    # cancelled once; a second time is a CONFLICT; an empty session needs no reason
    again = await client.run(CANCEL_SCHEDULE, {"id": gid("Schedule", schedule), "r": "x"}, as_="chief")
    assert error_codes(again) == ["CONFLICT"]
    empty = await make_schedule(db, physician="chief", capacity=3, start=time(7, 0), end=time(7, 30))
    cleared = (await client.data(CANCEL_SCHEDULE, {"id": gid("Schedule", empty)}, as_="chief"))["cancelSchedule"]
    assert cleared["cancelledAppointments"] == 0 and cleared["schedule"]["status"] == "CANCELLED"


def _pk(global_id: str) -> str:
    import base64

    return base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().split(":")[1]


async def test_a_due_follow_up_is_booked_in_one_step_and_completing_leads_to_its_outcome(
    client: GraphQLClient, db: Database
) -> None:
    patient = await patient_of(db, "physician")
    async with db.session() as session:
        follow_up = (
            (
                await session.execute(
                    select(FollowUp)
                    .where(FollowUp.patient_id == patient, FollowUp.status == "scheduled")
                    .order_by(FollowUp.id)
                )
            )
            .scalars()
            .first()
        )
    assert follow_up is not None
    schedule = await make_schedule(db, physician="physician")
    booked = (
        await client.data(
            BOOK_FOLLOW_UP, {"f": gid("FollowUp", follow_up.id), "s": gid("Schedule", schedule)}, as_="physician"
        )
    )["bookFollowUp"]
    assert booked["kind"] == "FOLLOW_UP" and booked["status"] == "BOOKED"
    assert booked["followUpId"] == gid("FollowUp", follow_up.id)
    [stored] = await appointments_of(db, schedule)
    assert stored.patient_id == patient and stored.follow_up_id == follow_up.id
    # another physician's patient's follow-up is out of reach
    gi_patient = await patient_of(db, "physician2")
    async with db.session() as session:
        theirs = (await session.execute(select(FollowUp.id).where(FollowUp.patient_id == gi_patient))).scalars().first()
    refused = await client.run(
        BOOK_FOLLOW_UP, {"f": gid("FollowUp", theirs), "s": gid("Schedule", schedule)}, as_="physician"
    )
    assert error_codes(refused) == ["NOT_FOUND"]
    await client.data(CHECK_IN, {"id": booked["id"]}, as_="physician")
    done = (await client.data(COMPLETE, {"id": booked["id"]}, as_="physician"))["completeAppointment"]
    assert done["status"] == "COMPLETED" and done["followUpId"] == booked["followUpId"]
    outcome = (
        await client.data(
            OUTCOME, {"id": done["followUpId"], "input": {"painScore": 2, "outcomeText": "恢复良好"}}, as_="physician"
        )
    )["recordFollowUpOutcome"]
    assert outcome["status"] == "COMPLETED" and outcome["painScore"] == 2
    # a closed follow-up cannot be booked again
    again = await client.run(
        BOOK_FOLLOW_UP, {"f": gid("FollowUp", follow_up.id), "s": gid("Schedule", schedule)}, as_="physician"
    )
    assert error_codes(again) == ["CONFLICT"]


async def test_the_jobs_mark_missed_after_the_session_and_remind_once(client: GraphQLClient, db: Database) -> None:
    # a session that ended yesterday (booked directly: booking refuses past sessions) and one tomorrow
    ended = await make_schedule(db, physician="physician", days_ahead=-1)
    tomorrow = await make_schedule(db, physician="physician", days_ahead=1)
    me = await _my_patient(db)
    other = await patient_of(db, "physician", index=1)
    booked = await _book(client, me, tomorrow)
    past_ids = []
    async with db.transaction() as session:
        for place, (patient, status) in enumerate(((me, "booked"), (other, "checked_in")), start=1):
            row = Appointment(
                patient_id=patient, booked_for_id=patient, schedule_id=ended, place=place,
                slot_at=datetime.now(UTC) - timedelta(days=1), status=status, active=1,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            past_ids.append(row.id)
    # demo appointments of ended sessions still booked are found too: count what the job should mark
    async with db.session() as session:
        waiting = (
            (
                await session.execute(
                    select(Appointment.id)
                    .join(Schedule, Schedule.id == Appointment.schedule_id)
                    .where(Appointment.status == "booked", Schedule.day < today())
                )
            )
            .scalars()
            .all()
        )
    done = await run_job(client, "appointments.mark_missed")
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] >= len(waiting) >= 1
    async with db.session() as session:
        statuses = dict(
            (
                await session.execute(select(Appointment.id, Appointment.status).where(Appointment.id.in_(past_ids)))
            ).all()
        )
        history = (
            (
                await session.execute(
                    select(AppointmentStatusChange).where(AppointmentStatusChange.appointment_id == past_ids[0])
                )
            )
            .scalars()
            .all()
        )
    assert statuses == {past_ids[0]: "missed", past_ids[1]: "checked_in"}
    assert [(h.to_status, h.changed_by_id) for h in history] == [("missed", None)]
    assert (await appointments_of(db, tomorrow))[0].status == "booked"  # the session has not ended
    again = await run_job(client, "appointments.mark_missed")
    assert again["rowsAffected"] == 0

    patient_user = await user_id(db, "patient")
    before = len(await _system_messages(db, patient_user))
    reminded = await run_job(client, "appointments.remind")
    assert reminded["status"] == "SUCCEEDED" and reminded["rowsAffected"] >= 1
    messages = await _system_messages(db, patient_user)
    mine = [m for m in messages[before:] if "就诊提醒" in m.body]
    assert len(mine) >= 1 and all(m.sender_id is None for m in mine)
    [stored] = [row for row in await appointments_of(db, tomorrow) if row.id == int(_pk(booked["id"]))]
    assert stored.reminded_at is not None
    twice = await run_job(client, "appointments.remind")
    assert twice["rowsAffected"] == 0 and len(await _system_messages(db, patient_user)) == len(messages)


async def test_merge_moves_appointments_and_the_export_holds_them(client: GraphQLClient, db: Database) -> None:
    schedule = await make_schedule(db, physician="physician", capacity=5)
    me = await _my_patient(db)
    keep = await patient_of(db, "physician", index=1)
    mine = await _book(client, me, schedule)
    kept = await _book(client, keep, schedule)  # both records in one session: the merge must not collide
    export = (await client.data("{ myDataExport }", as_="patient"))["myDataExport"]
    assert int(_pk(mine["id"])) in [row["id"] for row in export["appointment"]]
    assert any(row["appointment_id"] == int(_pk(mine["id"])) for row in export["appointment_status_change"])
    merged = (
        await client.data(
            MERGE, {"k": gid("Patient", keep), "m": gid("Patient", me), "r": "同一患者重复建档"}, as_="chief"
        )
    )["mergePatients"]
    assert int(_pk(mine["id"])) in merged["moved"]["appointment"]
    rows = {row.id: row.patient_id for row in await appointments_of(db, schedule)}
    assert rows == {int(_pk(mine["id"])): keep, int(_pk(kept["id"])): keep}
    await client.data(UNMERGE, {"id": merged["id"], "r": "误合并，撤销"}, as_="chief")
    rows = {row.id: row.patient_id for row in await appointments_of(db, schedule)}
    assert rows == {int(_pk(mine["id"])): me, int(_pk(kept["id"])): keep}


async def test_the_demo_month_counts_its_places(client: GraphQLClient, db: Database) -> None:
    """The demo's schedules span a month around today, and each session's count is its places held."""
    async with db.session() as session:
        schedules = (await session.execute(select(Schedule))).scalars().all()
        appointments = (await session.execute(select(Appointment))).scalars().all()
    days = sorted({row.day for row in schedules})
    assert days[0] <= today() - timedelta(days=10) and days[-1] >= today() + timedelta(days=10)
    held: dict[int, int] = {}
    for row in appointments:
        held[row.schedule_id] = held.get(row.schedule_id, 0) + (1 if row.active else 0)
        assert (row.status == "cancelled") == (row.active is None)
    assert all(row.booked == held.get(row.id, 0) <= row.capacity for row in schedules)
    past = {row.status for row in appointments if row.slot_at < datetime.now(UTC) - timedelta(days=1)}
    assert past <= {"completed", "missed", "cancelled"} and "completed" in past
