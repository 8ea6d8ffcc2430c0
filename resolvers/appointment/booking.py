"""Booking a place, and every status change after it.

A place is taken by one conditional UPDATE of the schedule (`booked < capacity`, the session open and not
past) as the unit's first statement: with 30 clients on the last place the database lets exactly one through,
and the others are told CONFLICT. The unique keys of models/appointment.py keep one appointment per patient per
session and one per place. Every status change goes along the allowed transitions, claims the row by its
version (two changes racing cannot both pass), and writes a line of the appointment's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import bindparam

from core.errors import AppError, bad_input, conflict, not_found
from core.timeutil import utcnow
from core.validation import choice, text
from models.appointment import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AppointmentStatusChange,
    BookedVia,
    Schedule,
    ScheduleStatus,
)
from models.clinical import FollowUp, FollowUpStatus
from models.patient import Patient
from resolvers.appointment.common import change_status, session_start, slot_at
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.patient import my_patient_id

TAKEN = "The patient already holds a place in this session, or the place was just taken: reload and try again"


@dataclass
class BookInput:
    patient_id: int
    schedule_id: int
    kind: str = AppointmentKind.FIRST_VISIT.value
    reason: str | None = None
    follow_up_id: int | None = None


def _closed_to_booking(ctx: Context, status: str, day: date, booked: int, capacity: int) -> AppError | None:
    """Why a session takes no booking now (not open, over, full), or None: one rule for the early check and for
    explaining a conditional update that took no place."""
    if status != ScheduleStatus.OPEN.value:
        return conflict("This session is not open for booking")
    if day < ctx.today():
        return conflict("This session is over")
    if booked >= capacity:
        return conflict("No place is left in this session")
    return None


async def _why_not(ctx: Context, unit: WriteUnit, schedule_id: int) -> AppError:
    """Why the conditional update took no place: the error to answer."""
    schedule = await unit.find(Schedule, schedule_id)
    if schedule is None:
        return not_found("Schedule")
    refusal = _closed_to_booking(ctx, schedule.status, schedule.day, schedule.booked, schedule.capacity)
    return refusal or conflict("No place is left in this session")


async def _refused_early(ctx: Context, schedule_id: int) -> AppError | None:
    """The session as last committed, read without a lock or a transaction: when it is already full (or closed,
    or over) the booking is refused at once instead of queueing on the session's row for the conditional update
    that could only fail. A session with a place left goes on to that update, which alone decides the race."""
    found = await ctx.data.rows(
        await ctx.data.select(
            Schedule,
            Schedule.status,
            Schedule.day,
            Schedule.booked,
            Schedule.capacity,
            key=("booking-precheck",),
            then=lambda s: s.where(Schedule.id == bindparam("schedule_id")),
        ),
        {"schedule_id": schedule_id},
    )
    if not found:
        return None  # missing or out of reach: the update's path answers it
    row = found[0]
    return _closed_to_booking(ctx, row.status, row.day, row.booked, row.capacity)


async def _take_place(ctx: Context, unit: WriteUnit, schedule_id: int) -> tuple[Schedule, int]:
    """Take one place of the session (the unit's first statement: it waits for a competing booking's commit and
    then sees it); the schedule and the free place number given."""
    taken = await unit.execute(
        (await ctx.data.update(Schedule, purpose="book"))
        .where(Schedule.id == schedule_id, Schedule.booked < Schedule.capacity, Schedule.day >= ctx.today())
        .values(booked=Schedule.booked + 1)
        .execution_options(synchronize_session=False)
    )
    if taken != 1:
        raise await _why_not(ctx, unit, schedule_id)
    schedule = await unit.find(Schedule, schedule_id)
    if schedule is None:  # pragma: no cover - reached by the update above
        raise not_found("Schedule")
    if session_start(schedule, ctx.settings.clinic_tz) <= utcnow():
        raise conflict("This session has already started")
    held = set(
        await unit.scalars(
            await ctx.data.select(
                Appointment,
                Appointment.place,
                purpose="places",
                then=lambda s: s.where(
                    Appointment.schedule_id == schedule_id, Appointment.active == 1
                ).with_for_update(),
            )
        )
    )
    place = next((number for number in range(1, schedule.capacity + 1) if number not in held), None)
    if place is None:
        raise conflict("No place is left in this session")
    return schedule, place


async def _book(
    ctx: Context, data: BookInput, *, via: BookedVia, operation: str, status: AppointmentStatus
) -> Appointment:
    kind = choice(AppointmentKind, data.kind, "kind")
    reason = text(data.reason, "reason", limit=2000)
    early = await _refused_early(ctx, data.schedule_id)
    async with ctx.data.write(
        operation=operation, action="create", entity_type="Appointment", conflict_message=TAKEN
    ) as unit:
        if early is not None:
            raise early  # refused in the unit, so its refusal is recorded as every other booking's
        schedule, place = await _take_place(ctx, unit, data.schedule_id)
        appointment = Appointment(
            patient_id=data.patient_id,
            booked_for_id=data.patient_id,
            schedule_id=data.schedule_id,
            place=place,
            slot_at=slot_at(schedule, place, ctx.settings.clinic_tz),
            kind=kind.value,
            reason=reason,
            status=status.value,
            active=1,
            follow_up_id=data.follow_up_id,
            booked_via=via.value,
            booked_by_id=ctx.principal.user_id,
        )
        unit.add(appointment)
        await unit.flush()
        unit.add(
            AppointmentStatusChange(
                appointment_id=appointment.id,  # type: ignore[arg-type]
                to_status=status.value,
                changed_by_id=ctx.principal.user_id,
                note="booked from the mini-program" if via is BookedVia.PATIENT else None,
            )
        )
        unit.entity_id = str(appointment.id)
        unit.patient_id = data.patient_id
        unit.detail = {"schedule": data.schedule_id, "place": place, "via": via.value, "status": status.value}
    return appointment


async def _due_follow_up(ctx: Context, follow_up_id: int, patient_id: int | None) -> FollowUp:
    follow_up: FollowUp = await ctx.data.get(FollowUp, follow_up_id, what="Follow-up")
    if patient_id is not None and follow_up.patient_id != patient_id:
        raise bad_input("The follow-up is another patient's", "followUpId")
    if follow_up.status != FollowUpStatus.SCHEDULED.value or follow_up.voided_at is not None:
        raise conflict("This follow-up is closed")
    return follow_up


async def staff_book(ctx: Context, data: BookInput) -> Appointment:
    """Staff book a place for a patient in their reach (booked at once)."""
    await ctx.data.reach_or_not_found(Patient, data.patient_id, what="Patient")  # its id, not the whole record
    if data.follow_up_id is not None:
        await _due_follow_up(ctx, data.follow_up_id, data.patient_id)
    return await _book(ctx, data, via=BookedVia.STAFF, operation="scheduleAppointment", status=AppointmentStatus.BOOKED)


async def book_follow_up(ctx: Context, follow_up_id: int, schedule_id: int, reason: str | None) -> Appointment:
    """A due follow-up booked as a clinic appointment in one step: completing it leads to its outcome."""
    follow_up = await _due_follow_up(ctx, follow_up_id, None)
    data = BookInput(
        patient_id=follow_up.patient_id,
        schedule_id=schedule_id,
        kind=AppointmentKind.FOLLOW_UP.value,
        reason=reason,
        follow_up_id=follow_up_id,
    )
    return await _book(ctx, data, via=BookedVia.STAFF, operation="bookFollowUp", status=AppointmentStatus.BOOKED)


async def patient_book(ctx: Context, schedule_id: int, kind: str, reason: str | None) -> Appointment:
    """The patient books from the mini-program: a requested appointment, holding its place until the clinic
    confirms or cancels it."""
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        raise bad_input("Bind your patient record first", "scheduleId")
    data = BookInput(patient_id=patient_id, schedule_id=schedule_id, kind=kind, reason=reason)
    return await _book(
        ctx, data, via=BookedVia.PATIENT, operation="bookAppointment", status=AppointmentStatus.REQUESTED
    )


# ---- status changes ----------------------------------------------------------------------------


async def _claim(ctx: Context, unit: WriteUnit, appointment: Appointment) -> None:
    changed = await unit.execute(
        (await ctx.data.update(Appointment))
        .where(Appointment.id == appointment.id, Appointment.version == appointment.version)
        .values(version=appointment.version + 1)
        .execution_options(synchronize_session=False)
    )
    if changed != 1:
        raise conflict("This appointment was changed by someone else; reload and try again")
    appointment.version += 1


async def release_place(ctx: Context, unit: WriteUnit, schedule_id: int) -> None:
    await unit.execute(
        (await ctx.data.update(Schedule, purpose="release"))
        .where(Schedule.id == schedule_id, Schedule.booked > 0)
        .values(booked=Schedule.booked - 1)
        .execution_options(synchronize_session=False)
    )


OPERATIONS = {
    AppointmentStatus.BOOKED: "confirmAppointment",
    AppointmentStatus.CHECKED_IN: "checkInAppointment",
    AppointmentStatus.COMPLETED: "completeAppointment",
    AppointmentStatus.CANCELLED: "cancelAppointment",
    AppointmentStatus.MISSED: "markAppointmentMissed",
}


async def move(ctx: Context, appointment_id: int, to: AppointmentStatus, note: str | None = None) -> Appointment:
    """Staff change an appointment's status along the allowed transitions; cancelling needs a reason and frees
    the place."""
    required = to is AppointmentStatus.CANCELLED
    field = "reason" if required else "note"
    why = text(note, field, limit=255, required=required)
    async with ctx.data.write(operation=OPERATIONS[to], action="update", entity_type="Appointment") as unit:
        appointment = await unit.get(Appointment, appointment_id, what="Appointment")
        await _claim(ctx, unit, appointment)
        before = change_status(unit, appointment, to, by=ctx.principal.user_id, note=why)
        if to is AppointmentStatus.CANCELLED:
            appointment.cancel_reason = why
            await release_place(ctx, unit, appointment.schedule_id)
        unit.entity_id = str(appointment_id)
        unit.patient_id = appointment.patient_id
        unit.detail = {"from": before, "to": to.value}
    return appointment


async def cancel_mine(ctx: Context, appointment_id: int, reason: str | None) -> Appointment:
    """The patient cancels their own appointment, until APPOINTMENT_CANCEL_HOURS before the session."""
    patient_id = await my_patient_id(ctx)
    why = text(reason, "reason", limit=255) or "cancelled by the patient"
    async with ctx.data.write(operation="cancelMyAppointment", action="update", entity_type="Appointment") as unit:
        appointment = await unit.get(Appointment, appointment_id, what="Appointment")
        if patient_id is None or appointment.patient_id != patient_id:
            raise not_found("Appointment")
        schedule = await unit.find(Schedule, appointment.schedule_id)
        hours = ctx.settings.appointment_cancel_hours
        if schedule is not None and session_start(schedule, ctx.settings.clinic_tz) - utcnow() < timedelta(hours=hours):
            raise conflict(f"Online cancellation closes {hours} hours before the session: please call the clinic")
        await _claim(ctx, unit, appointment)
        before = change_status(unit, appointment, AppointmentStatus.CANCELLED, by=ctx.principal.user_id, note=why)
        appointment.cancel_reason = why
        await release_place(ctx, unit, appointment.schedule_id)
        unit.entity_id = str(appointment_id)
        unit.patient_id = appointment.patient_id
        unit.detail = {"from": before, "to": AppointmentStatus.CANCELLED.value}
    return appointment
