"""The appointment module's jobs on the platform scheduler (resolvers/operations/targets.py), registered when the
module is imported: booked appointments whose session has ended (clinic time zone) become missed, and the day
before a session each booked patient is reminded in their consultation. Both are idempotent: a missed one is
no longer booked, and a reminder is claimed by a conditional update of `reminded_at` before it is sent, so a
job run twice (or two runs at once) sends no second reminder. Each change is a write unit of its own, audited.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from core.timeutil import utcnow
from models.appointment import Appointment, AppointmentStatus, Schedule
from models.user import User
from resolvers.appointment.common import at_clinic, change_status
from resolvers.appointment.notify import tell_patient
from resolvers.appointment.sessions import session_label
from resolvers.data.context import Context
from resolvers.operations.runs import RunContext
from resolvers.operations.targets import Param, target

_WAITING = [AppointmentStatus.REQUESTED.value, AppointmentStatus.BOOKED.value]


class _Changed(Exception):
    """The appointment changed since it was picked (checked in, cancelled): leave it."""


@target(
    "appointments.mark_missed",
    "Mark booked appointments missed once their session has ended (clinic time zone) without a check-in. Each is "
    "audited, with a line in the appointment's history.",
    Param("batchSize", "int", "at most this many per run (the next run goes on)", 1000, False, 1, 10000),
    system_cron="5 * * * *",
)
async def mark_missed_appointments(run: RunContext) -> int:
    ctx = run.ctx
    system = ctx.data.unscoped("the platform marks appointments whose session has ended, whoever's patients")
    now = utcnow()
    zone = ctx.settings.clinic_tz
    rows = await ctx.data.rows(
        system.select(Appointment.id, Schedule.day, Schedule.end_time)
        .join(Schedule, Schedule.id == Appointment.schedule_id)
        .where(Appointment.status == AppointmentStatus.BOOKED.value, Schedule.day <= ctx.today())
        .order_by(Appointment.id)
        .limit(int(run.args["batchSize"]))
    )
    marked = 0
    for appointment_id, day, end in rows:
        if at_clinic(day, end, zone) > now:
            continue
        try:
            await _mark_missed(ctx, appointment_id)
        except _Changed:
            continue
        marked += 1
    return marked


async def _mark_missed(ctx: Context, appointment_id: int) -> None:
    system = ctx.data.unscoped("the platform marks an appointment whose session has ended")
    async with ctx.data.write(operation="markAppointmentMissed", action="update", entity_type="Appointment") as unit:
        row = await unit.first(
            system.select(Appointment).where(
                Appointment.id == appointment_id, Appointment.status == AppointmentStatus.BOOKED.value
            )
        )
        if row is None:
            raise _Changed
        changed = await unit.execute(
            system.update(Appointment)
            .where(Appointment.id == appointment_id, Appointment.version == row.version)
            .values(version=row.version + 1)
            .execution_options(synchronize_session=False)
        )
        if changed != 1:
            raise _Changed
        row.version += 1
        change_status(unit, row, AppointmentStatus.MISSED, by=None, note="not checked in by the end of the session")
        unit.entity_id = str(appointment_id)
        unit.patient_id = row.patient_id
        unit.detail = {"status": AppointmentStatus.MISSED.value, "automatic": True}


@target(
    "appointments.remind",
    "The day before a session (clinic time zone), remind each patient holding a place (booked or requested) with a "
    "system message in their consultation; once per appointment, however often it runs.",
    Param("daysAhead", "int", "remind for sessions this many days ahead", 1, False, 0, 7),
    Param("batchSize", "int", "at most this many per run", 2000, False, 1, 20000),
    system_cron="0 18 * * *",
)
async def remind_patients(run: RunContext) -> int:
    ctx = run.ctx
    system = ctx.data.unscoped("the platform reminds every booked patient of tomorrow's sessions")
    day = ctx.today() + timedelta(days=int(run.args["daysAhead"]))
    candidates = await ctx.data.scalars(
        system.select(Appointment.id)
        .join(Schedule, Schedule.id == Appointment.schedule_id)
        .where(Appointment.status.in_(_WAITING), Appointment.reminded_at.is_(None), Schedule.day == day)
        .order_by(Appointment.id)
        .limit(int(run.args["batchSize"]))
    )
    sent = 0
    for appointment_id in candidates:
        sent += int(await _remind(ctx, appointment_id))
    return sent


async def _remind(ctx: Context, appointment_id: int) -> bool:
    system = ctx.data.unscoped("the platform reminds a booked patient")
    async with ctx.data.write(operation="remindAppointment", action="notify", entity_type="Appointment") as unit:
        claimed = await unit.execute(
            system.update(Appointment)
            .where(
                Appointment.id == appointment_id,
                Appointment.reminded_at.is_(None),
                Appointment.status.in_(_WAITING),
            )
            .values(reminded_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if claimed != 1:  # reminded already (another run), or no longer waiting: nothing to say
            return False
        appointment = await unit.first(system.select(Appointment).where(Appointment.id == appointment_id))
        schedule = await unit.first(system.select(Schedule).where(Schedule.id == appointment.schedule_id))
        patient_id = appointment.patient_id
        names = await unit.scalars(system.select(User.display_name).where(User.id == schedule.physician_id))
        physician = names[0] if names else ""
        at = appointment.slot_at.astimezone(ZoneInfo(ctx.settings.clinic_tz)).strftime("%H:%M")
        where = f"，地点 {schedule.location}" if schedule.location else ""
        text = (
            f"就诊提醒：您预约了 {session_label(schedule)} {physician} 的门诊，预计 {at} 就诊{where}。"
            "如需取消请提前操作。 "
            f"Reminder: your appointment with {physician} at {session_label(schedule)}, expected at {at}."
        )
        told = await tell_patient(
            ctx,
            unit,
            patient_id=patient_id,
            physician_id=schedule.physician_id,
            department_id=schedule.department_id,
            text=text,
        )
        unit.entity_id = str(appointment_id)
        unit.patient_id = patient_id
        unit.detail = {"reminded": told}
    return told
