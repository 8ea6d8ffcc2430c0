"""A session's own status: closing it to new bookings (its appointments stand), reopening it, and cancelling it.

Cancelling a session with bookings needs a reason, cancels every appointment holding a place in it and tells each
booked patient in their consultation, in one unit (all or nothing) and in a constant number of statements however
many patients are booked. Closing keeps every booking (nothing changes for those patients, so nobody is told): the
session only stops taking new ones (booking asks for an open session: CONFLICT otherwise) until it is reopened.

The session's appointments are its patients' whoever attends them: cancelling the session cancels all of them,
so they are found as system work (`data.unscoped`) once the session itself was reached for managing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import bad_input, conflict
from core.timeutil import utcnow
from core.validation import text
from models.appointment import Appointment, AppointmentStatus, AppointmentStatusChange, Schedule, ScheduleStatus
from models.user import User
from resolvers.appointment.notify import tell_patients
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

SESSION_NAMES = {"morning": "上午 morning", "afternoon": "下午 afternoon", "evening": "晚上 evening"}
_HOLDING = [AppointmentStatus.REQUESTED.value, AppointmentStatus.BOOKED.value]


@dataclass
class Cancelled:
    schedule: Schedule
    appointments: int
    notified: int


def session_label(schedule: Schedule) -> str:
    hours = f"{schedule.start_time.strftime('%H:%M')}-{schedule.end_time.strftime('%H:%M')}"
    return f"{schedule.day.isoformat()} {SESSION_NAMES.get(schedule.period, hours)} ({hours})"


async def _claim(ctx: Context, unit: WriteUnit, schedule: Schedule, **values: object) -> None:
    """Write the session's new values if nobody changed it since it was read (its version), else CONFLICT."""
    changed = await unit.execute(
        (await ctx.data.update(Schedule, purpose="manage"))
        .where(Schedule.id == schedule.id, Schedule.version == schedule.version)
        .values(version=schedule.version + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if changed != 1:
        raise conflict("This session was changed by someone else; reload and try again")
    schedule.version += 1


async def set_open(ctx: Context, schedule_id: int, *, open_: bool, reason: str | None = None) -> Schedule:
    """Close an open session to new bookings (its appointments stand), or reopen a closed one."""
    operation = "reopenSchedule" if open_ else "closeSchedule"
    why = text(reason, "reason", limit=255)
    want, was = (ScheduleStatus.OPEN, ScheduleStatus.CLOSED) if open_ else (ScheduleStatus.CLOSED, ScheduleStatus.OPEN)
    async with ctx.data.write(operation=operation, action="update", entity_type="Schedule") as unit:
        schedule = await unit.get(Schedule, schedule_id, what="Schedule", purpose="manage")
        if schedule.status != was.value:
            raise conflict(f"This session is {schedule.status}: only an {was.value} session can be {want.value}")
        unit.detach(schedule)  # written by the conditional update
        await _claim(ctx, unit, schedule, status=want.value)
        schedule.status = want.value
        unit.entity_id = str(schedule_id)
        unit.detail = {"from": was.value, "to": want.value, "booked": schedule.booked, "reason": why}
    return schedule


async def cancel_schedule(ctx: Context, schedule_id: int, reason: str | None) -> Cancelled:
    why = text(reason, "reason", limit=255)
    system = ctx.data.unscoped("a cancelled session's appointments, whoever's patients they are")
    async with ctx.data.write(operation="cancelSchedule", action="update", entity_type="Schedule") as unit:
        schedule = await unit.get(Schedule, schedule_id, what="Schedule", purpose="manage")
        if schedule.status == ScheduleStatus.CANCELLED.value:
            raise conflict("This session is already cancelled")
        unit.detach(schedule)  # written by the conditional update below
        holding = await unit.rows(
            system.select(Appointment.id, Appointment.patient_id, Appointment.status)
            .where(Appointment.schedule_id == schedule_id, Appointment.status.in_(_HOLDING))
            .order_by(Appointment.id)
            .with_for_update()
        )
        if holding and why is None:
            raise bad_input("The session has bookings: give a reason (the booked patients are told)", "reason")
        await _claim(
            ctx,
            unit,
            schedule,
            status=ScheduleStatus.CANCELLED.value,
            cancel_reason=why,
            booked=Schedule.booked - len(holding),
        )
        notified = 0
        if holding:
            notified = await _cancel_bookings(ctx, unit, schedule, holding, why or "")
        schedule.status = ScheduleStatus.CANCELLED.value
        schedule.cancel_reason = why
        schedule.booked -= len(holding)
        unit.entity_id = str(schedule_id)
        unit.detail = {"appointments": [row.id for row in holding], "notified": notified, "reason": why}
    return Cancelled(schedule=schedule, appointments=len(holding), notified=notified)


async def _cancel_bookings(ctx: Context, unit: WriteUnit, schedule: Schedule, holding: list[Any], why: str) -> int:
    """Cancel the session's held appointments (one UPDATE, one history INSERT) and tell their patients (a constant
    number of statements, notify.py); the patients told."""
    system = ctx.data.unscoped("a cancelled session's appointments, whoever's patients they are")
    ids = [row.id for row in holding]
    now = utcnow()
    changed = await unit.execute(
        system.update(Appointment)
        .where(Appointment.id.in_(ids), Appointment.status.in_(_HOLDING))
        .values(
            status=AppointmentStatus.CANCELLED.value,
            active=None,
            cancel_reason=why,
            updated_at=now,
            version=Appointment.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if changed != len(ids):  # pragma: no cover - the rows are locked (FOR UPDATE) since they were read
        raise conflict("An appointment of this session changed meanwhile; try again")
    by = ctx.principal.user_id
    await unit.insert_many(
        AppointmentStatusChange,
        [
            {"appointment_id": row.id, "from_status": row.status, "to_status": AppointmentStatus.CANCELLED.value,
             "changed_by_id": by, "note": why, "changed_at": now}
            for row in holding
        ],
    )  # fmt: skip
    names = await unit.scalars(system.select(User.display_name).where(User.id == schedule.physician_id))
    physician = names[0] if names else ""
    message = f"您预约的 {session_label(schedule)} {physician} 门诊已停诊，原因：{why}。请重新预约。 " + (
        f"Your appointment at {session_label(schedule)} with {physician} is cancelled: {why}. Please book again."
    )
    told = await tell_patients(
        ctx,
        unit,
        patient_ids=[row.patient_id for row in holding],
        physician_id=schedule.physician_id,
        department_id=schedule.department_id,
        text=message,
    )
    return len(told)
