"""What the appointment modules share: a session's instants in the clinic's zone, slot times, status changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.errors import conflict
from core.timeutil import utcnow
from models.appointment import (
    TRANSITIONS,
    Appointment,
    AppointmentStatus,
    AppointmentStatusChange,
    Schedule,
)
from resolvers.audit.unit import WriteUnit


def at_clinic(day: date, moment: time, zone: str) -> datetime:
    """A clinic-time moment of a day as an aware instant."""
    return datetime.combine(day, moment, tzinfo=ZoneInfo(zone))


def session_start(schedule: Schedule, zone: str) -> datetime:
    return at_clinic(schedule.day, schedule.start_time, zone)


def slot_at(schedule: Schedule, place: int, zone: str) -> datetime:
    """When the holder of `place` (1..capacity) is seen: places spread evenly over the session's slots."""
    minutes = (
        datetime.combine(schedule.day, schedule.end_time) - datetime.combine(schedule.day, schedule.start_time)
    ).seconds // 60
    slots = max(1, minutes // max(1, schedule.slot_minutes))
    slot = (place - 1) * slots // max(1, schedule.capacity)
    return session_start(schedule, zone) + timedelta(minutes=slot * schedule.slot_minutes)


def stored_instant(value: datetime) -> str:
    """An instant as both databases store and compare it (naive UTC text), for a keyset cursor."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def change_status(
    unit: WriteUnit,
    appointment: Appointment,
    to: AppointmentStatus,
    *,
    by: int | None,
    note: str | None = None,
) -> str:
    """Move the appointment along an allowed transition (else CONFLICT) and record the change in its history;
    the previous status. The caller claims the row (`claim`) so two changes cannot both pass this check."""
    before = AppointmentStatus(appointment.status)
    if to not in TRANSITIONS[before]:
        raise conflict(f"An appointment {before.value.replace('_', ' ')} cannot become {to.value.replace('_', ' ')}")
    appointment.status = to.value
    appointment.active = None if to is AppointmentStatus.CANCELLED else 1
    appointment.updated_at = utcnow()
    unit.add(appointment)
    unit.add(
        AppointmentStatusChange(
            appointment_id=appointment.id,  # type: ignore[arg-type]
            from_status=before.value,
            to_status=to.value,
            changed_by_id=by,
            note=note,
        )
    )
    return before.value
