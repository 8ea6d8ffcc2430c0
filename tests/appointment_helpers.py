"""Shared pieces of the appointment tests: sessions made directly in the database, queries, look-ups."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from core.timeutil import clinic_today
from models.appointment import Appointment, AppointmentStatusChange, Schedule
from models.organisation import Department
from models.patient import Patient
from tests.clinical_helpers import user_id

APPOINTMENT_FIELDS = """id scheduleId slotAt place kind reason status bookedVia followUpId cancelReason version bookedBy
 history { fromStatus toStatus by note at }"""
SCHEDULE = (
    "mutation ($input: ScheduleAppointmentInput!) { scheduleAppointment(input: $input) { " + APPOINTMENT_FIELDS + " } }"
)
BOOK = (
    "mutation ($s: ID!, $kind: AppointmentKind, $reason: String) { bookAppointment(scheduleId: $s, kind: $kind,"
    " reason: $reason) { " + APPOINTMENT_FIELDS + " } }"
)
CANCEL_MINE = "mutation ($id: ID!, $r: String) { cancelMyAppointment(id: $id, reason: $r) { id status cancelReason } }"
CONFIRM = "mutation ($id: ID!) { confirmAppointment(id: $id) { id status version } }"
CHECK_IN = "mutation ($id: ID!) { checkInAppointment(id: $id) { id status } }"
COMPLETE = "mutation ($id: ID!, $n: String) { completeAppointment(id: $id, note: $n) { id status followUpId } }"
CANCEL = "mutation ($id: ID!, $r: String!) { cancelAppointment(id: $id, reason: $r) { id status cancelReason } }"
MISSED = "mutation ($id: ID!) { markAppointmentMissed(id: $id) { id status } }"
CANCEL_SCHEDULE = (
    "mutation ($id: ID!, $r: String) { cancelSchedule(id: $id, reason: $r) { cancelledAppointments notifiedPatients"
    " schedule { id status cancelReason booked free } } }"
)


def today() -> date:
    return clinic_today("Asia/Shanghai")


async def department_id(db: Database, code: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(Department.id).where(Department.code == code))).scalar_one())


async def make_schedule(
    db: Database,
    *,
    physician: str = "physician",
    department: str = "CRS",
    days_ahead: int = 5,
    capacity: int = 10,
    start: time = time(18, 0),  # the demo's sessions are mornings and afternoons
    end: time = time(21, 0),
    booked: int = 0,
) -> int:
    """A fresh open session (directly in the database), its id."""
    row = Schedule(
        physician_id=await user_id(db, physician),
        department_id=await department_id(db, department),
        day=today() + timedelta(days=days_ahead),
        period="custom",
        start_time=start,
        end_time=end,
        slot_minutes=15,
        capacity=capacity,
        booked=booked,
        location="Room 1",
    )
    async with db.transaction() as session:
        session.add(row)
        await session.flush()
        return int(row.id)  # type: ignore[arg-type]


async def schedule_row(db: Database, schedule_id: int) -> Schedule:
    async with db.session() as session:
        return (await session.execute(select(Schedule).where(Schedule.id == schedule_id))).scalar_one()


async def appointments_of(db: Database, schedule_id: int) -> list[Appointment]:
    async with db.session() as session:
        rows = await session.execute(
            select(Appointment).where(Appointment.schedule_id == schedule_id).order_by(Appointment.id)
        )
        return list(rows.scalars().all())


async def history_count(db: Database, appointment_id: int) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(AppointmentStatusChange)
                    .where(AppointmentStatusChange.appointment_id == appointment_id)
                )
            ).scalar_one()
        )


async def patient_of(db: Database, attending: str, *, index: int = 0) -> int:
    uid = await user_id(db, attending)
    async with db.session() as session:
        rows = await session.execute(
            select(Patient.id)
            .where(Patient.attending_physician_id == uid, Patient.merged_into_id.is_(None))
            .order_by(Patient.id)
        )
        return int(list(rows.scalars().all())[index])


async def free_patient_of(db: Database, attending: str, schedule_id: int) -> int:
    """A patient of this physician holding no place in the session."""
    holding = {row.patient_id for row in await appointments_of(db, schedule_id) if row.active}
    uid = await user_id(db, attending)
    async with db.session() as session:
        rows = await session.execute(
            select(Patient.id).where(Patient.attending_physician_id == uid).order_by(Patient.id)
        )
        return next(int(pk) for pk in rows.scalars().all() if pk not in holding)


def gid(kind: str, pk: Any) -> str:
    return encode_id(kind, int(pk))
