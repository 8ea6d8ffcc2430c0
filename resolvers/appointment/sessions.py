"""Cancelling a session: with bookings it needs a reason, cancels every appointment holding a place in it and
tells each booked patient in their consultation, in one unit (all or nothing).

The session's appointments are its patients' whoever attends them: cancelling the session cancels all of them,
so they are found as system work (`data.unscoped`) once the session itself was reached for managing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import bad_input, conflict
from core.validation import text
from models.appointment import Appointment, AppointmentStatus, Schedule, ScheduleStatus
from models.user import User
from resolvers.appointment.common import change_status
from resolvers.appointment.notify import tell_patient
from resolvers.data.context import Context

SESSION_NAMES = {"morning": "上午 morning", "afternoon": "下午 afternoon", "evening": "晚上 evening"}


@dataclass
class Cancelled:
    schedule: Schedule
    appointments: int
    notified: int


def session_label(schedule: Schedule) -> str:
    hours = f"{schedule.start_time.strftime('%H:%M')}-{schedule.end_time.strftime('%H:%M')}"
    return f"{schedule.day.isoformat()} {SESSION_NAMES.get(schedule.period, hours)} ({hours})"


async def cancel_schedule(ctx: Context, schedule_id: int, reason: str | None) -> Cancelled:
    why = text(reason, "reason", limit=255)
    system = ctx.data.unscoped("a cancelled session's appointments, whoever's patients they are")
    async with ctx.data.write(operation="cancelSchedule", action="update", entity_type="Schedule") as unit:
        schedule = await unit.get(Schedule, schedule_id, what="Schedule", purpose="manage")
        if schedule.status == ScheduleStatus.CANCELLED.value:
            raise conflict("This session is already cancelled")
        unit.detach(schedule)  # written by the conditional update below
        holding = await unit.objects(
            system.select(Appointment)
            .where(
                Appointment.schedule_id == schedule_id,
                Appointment.status.in_([AppointmentStatus.REQUESTED.value, AppointmentStatus.BOOKED.value]),
            )
            .order_by(Appointment.id)
            .with_for_update()
        )
        if holding and why is None:
            raise bad_input("The session has bookings: give a reason (the booked patients are told)", "reason")
        changed = await unit.execute(
            (await ctx.data.update(Schedule, purpose="manage"))
            .where(Schedule.id == schedule_id, Schedule.version == schedule.version)
            .values(
                status=ScheduleStatus.CANCELLED.value,
                cancel_reason=why,
                version=schedule.version + 1,
                booked=Schedule.booked - len(holding),
            )
            .execution_options(synchronize_session=False)
        )
        if changed != 1:
            raise conflict("This session was changed by someone else; reload and try again")
        names = await unit.scalars(system.select(User.display_name).where(User.id == schedule.physician_id))
        physician = names[0] if names else ""
        message = f"您预约的 {session_label(schedule)} {physician} 门诊已停诊，原因：{why}。请重新预约。 " + (
            f"Your appointment at {session_label(schedule)} with {physician} is cancelled: {why}. Please book again."
        )
        notified = 0
        for appointment in holding:
            appointment.version += 1
            change_status(unit, appointment, AppointmentStatus.CANCELLED, by=ctx.principal.user_id, note=why)
            appointment.cancel_reason = why
            told = await tell_patient(
                ctx,
                unit,
                patient_id=appointment.patient_id,
                physician_id=schedule.physician_id,
                department_id=schedule.department_id,
                text=message,
            )
            notified += int(told)
        schedule.status = ScheduleStatus.CANCELLED.value
        schedule.cancel_reason = why
        schedule.booked -= len(holding)
        schedule.version += 1
        unit.entity_id = str(schedule_id)
        unit.detail = {"appointments": [a.id for a in holding], "notified": notified, "reason": why}
    return Cancelled(schedule=schedule, appointments=len(holding), notified=notified)
