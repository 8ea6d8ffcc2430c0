"""Doctor schedules and appointments: the timetable, free places, booking (staff and mini-program) and status
changes. Managing sessions (the schedule plan's import, export and template; closing, reopening and cancelling a
session) is schema/schedule.py."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models import appointment as m
from resolvers import appointment as appointments
from resolvers.appointment import appointment_loaders
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection
from schema.patient import PatientType

ClinicSessionEnum = strawberry.enum(m.ClinicSession, name="ClinicSession", description="A session of a clinic day.")
ScheduleStatusEnum = strawberry.enum(m.ScheduleStatus, name="ScheduleStatus", description="Whether a session books.")
AppointmentKindEnum = strawberry.enum(m.AppointmentKind, name="AppointmentKind", description="What the visit is for.")
AppointmentStatusEnum = strawberry.enum(
    m.AppointmentStatus, name="AppointmentStatus", description="Where an appointment stands."
)
BookedViaEnum = strawberry.enum(m.BookedVia, name="BookedVia", description="Who made the appointment.")


def _gid(kind: str, pk: int | None) -> strawberry.ID | None:
    return None if pk is None else strawberry.ID(encode_id(kind, pk))


@strawberry.type(name="Schedule", description="One physician's session on one day (times in the clinic's zone).")
class ScheduleType:
    id: strawberry.ID = strawberry.field(description="The session's id.")
    physician_id: strawberry.ID = strawberry.field(description="The physician holding the session.")
    department_id: strawberry.ID = strawberry.field(description="The department it books for.")
    day: date = strawberry.field(description="The calendar day.")
    session: ClinicSessionEnum = strawberry.field(description="Morning, afternoon, evening or custom hours.")  # type: ignore[valid-type]
    start_time: time = strawberry.field(description="Start, clinic time.")
    end_time: time = strawberry.field(description="End, clinic time.")
    slot_minutes: int = strawberry.field(description="Length of one slot.")
    capacity: int = strawberry.field(description="Places in the session.")
    booked: int = strawberry.field(description="Places held by appointments not cancelled.")
    status: ScheduleStatusEnum = strawberry.field(description="Open, closed or cancelled.")  # type: ignore[valid-type]
    location: str | None = strawberry.field(description="Where (room).")
    cancel_reason: str | None = strawberry.field(description="Why the session was cancelled.")
    version: int = strawberry.field(description="Changes with every update.")
    _physician: strawberry.Private[int]
    _department: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: m.Schedule) -> ScheduleType:
        return cls(
            id=strawberry.ID(encode_id("Schedule", row.id)),  # type: ignore[arg-type]
            physician_id=strawberry.ID(encode_id("User", row.physician_id)),
            department_id=strawberry.ID(encode_id("Department", row.department_id)),
            day=row.day,
            session=m.ClinicSession(row.period),
            start_time=row.start_time,
            end_time=row.end_time,
            slot_minutes=row.slot_minutes,
            capacity=row.capacity,
            booked=row.booked,
            status=m.ScheduleStatus(row.status),
            location=row.location,
            cancel_reason=row.cancel_reason,
            version=row.version,
            _physician=row.physician_id,
            _department=row.department_id,
        )

    @strawberry.field(description="Places still free (none once closed or cancelled).")
    def free(self) -> int:
        if self.status != m.ScheduleStatus.OPEN:
            return 0
        return max(0, self.capacity - self.booked)

    @strawberry.field(description="The physician's display name.")
    async def physician_name(self, info: Info) -> str | None:
        return await info.context.loaders.user_name_by_id.load(self._physician)

    @strawberry.field(description="The department's name.")
    async def department_name(self, info: Info) -> str | None:
        return await info.context.loaders.department_name(self._department)


@strawberry.type(name="AppointmentStatusChange", description="One line of an appointment's history.")
class AppointmentStatusChangeType:
    from_status: AppointmentStatusEnum | None = strawberry.field(description="Before (none: when it was made).")  # type: ignore[valid-type]
    to_status: AppointmentStatusEnum = strawberry.field(description="After.")  # type: ignore[valid-type]
    at: datetime = strawberry.field(description="When.")
    note: str | None = strawberry.field(description="The reason or note given.")
    _by: strawberry.Private[int | None]

    @strawberry.field(description="Who changed it (none: the platform).")
    async def by(self, info: Info) -> str | None:
        return None if self._by is None else await info.context.loaders.user_name_by_id.load(self._by)

    @classmethod
    def from_row(cls, row: m.AppointmentStatusChange) -> AppointmentStatusChangeType:
        return cls(
            from_status=None if row.from_status is None else m.AppointmentStatus(row.from_status),
            to_status=m.AppointmentStatus(row.to_status),
            at=row.changed_at,
            note=row.note,
            _by=row.changed_by_id,
        )


@strawberry.type(name="Appointment", description="A patient's place in a session.")
class AppointmentType:
    id: strawberry.ID = strawberry.field(description="The appointment's id.")
    schedule_id: strawberry.ID = strawberry.field(description="The session booked.")
    slot_at: datetime = strawberry.field(description="When the patient is expected (UTC).")
    place: int = strawberry.field(description="The place number in the session (order of arrival).")
    kind: AppointmentKindEnum = strawberry.field(description="First visit, follow-up or teleconsultation.")  # type: ignore[valid-type]
    reason: str | None = strawberry.field(description="Why the patient comes.")
    status: AppointmentStatusEnum = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    booked_via: BookedViaEnum = strawberry.field(description="The patient (mini-program) or staff.")  # type: ignore[valid-type]
    follow_up_id: strawberry.ID | None = strawberry.field(
        description="The follow-up this visit serves, if any: once completed, record its outcome there."
    )
    cancel_reason: str | None = strawberry.field(description="Why it was cancelled.")
    created_at: datetime = strawberry.field(description="When it was made.")
    version: int = strawberry.field(description="Changes with every status change.")
    _pk: strawberry.Private[int]
    _patient: strawberry.Private[int]
    _schedule: strawberry.Private[int]
    _follow_up: strawberry.Private[int | None]
    _booked_by: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: m.Appointment) -> AppointmentType:
        return cls(
            id=strawberry.ID(encode_id("Appointment", row.id)),  # type: ignore[arg-type]
            schedule_id=strawberry.ID(encode_id("Schedule", row.schedule_id)),
            slot_at=row.slot_at,
            place=row.place,
            kind=m.AppointmentKind(row.kind),
            reason=row.reason,
            status=m.AppointmentStatus(row.status),
            booked_via=m.BookedVia(row.booked_via),
            follow_up_id=_gid("FollowUp", row.follow_up_id),
            cancel_reason=row.cancel_reason,
            created_at=row.created_at,
            version=row.version,
            _pk=row.id,  # type: ignore[arg-type]
            _patient=row.patient_id,
            _schedule=row.schedule_id,
            _follow_up=row.follow_up_id,
            _booked_by=row.booked_by_id,
        )

    @strawberry.field(description="The patient (their fields shown and masked as in the patient's record).")
    async def patient(self, info: Info) -> PatientType | None:
        row = await info.context.loaders.patient_by_id.load(self._patient)
        return PatientType.from_row(row) if row else None

    @strawberry.field(description="The session.")
    async def schedule(self, info: Info) -> ScheduleType | None:
        row = await appointment_loaders(info.context).schedule_by_id.load(self._schedule)
        return ScheduleType.from_row(row) if row else None

    @strawberry.field(description="Who made it (a staff member's name, or the patient).")
    async def booked_by(self, info: Info) -> str | None:
        return None if self._booked_by is None else await info.context.loaders.user_name_by_id.load(self._booked_by)

    @strawberry.field(description="Every status change, oldest first.")
    async def history(self, info: Info) -> list[AppointmentStatusChangeType]:
        rows = await appointment_loaders(info.context).history_by_appointment_id.load(self._pk)
        return [AppointmentStatusChangeType.from_row(row) for row in rows]


@strawberry.type(name="Availability", description="Free places of a department on one day and session.")
class AvailabilityType:
    day: date = strawberry.field(description="The calendar day.")
    session: ClinicSessionEnum = strawberry.field(description="The session.")  # type: ignore[valid-type]
    sessions: int = strawberry.field(description="Open sessions (physicians) on it.")
    capacity: int = strawberry.field(description="Places in them.")
    free: int = strawberry.field(description="Places still free.")


# ---- inputs ------------------------------------------------------------------------------------


@strawberry.input(description="Which sessions to list.")
class ScheduleFilter:
    department_id: strawberry.ID | None = strawberry.field(default=None, description="One department's.")
    physician_id: strawberry.ID | None = strawberry.field(default=None, description="One physician's.")
    from_: date | None = strawberry.field(default=None, name="from", description="From this day.")
    to: date | None = strawberry.field(default=None, description="Up to this day (at most 92 days after from).")
    has_availability: bool | None = strawberry.field(
        default=None, description="True: open with places free; false: full, closed or cancelled."
    )


@strawberry.input(description="Which appointments to list.")
class AppointmentFilter:
    status: AppointmentStatusEnum | None = strawberry.field(default=None, description="In this status.")  # type: ignore[valid-type]
    patient_id: strawberry.ID | None = strawberry.field(default=None, description="One patient's.")
    physician_id: strawberry.ID | None = strawberry.field(default=None, description="In this physician's sessions.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="In this department's sessions.")
    from_: date | None = strawberry.field(default=None, name="from", description="From this day (clinic time).")
    to: date | None = strawberry.field(default=None, description="Up to this day (clinic time).")


@strawberry.input(description="A place booked by staff for a patient.")
class ScheduleAppointmentInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient (within your reach).")
    schedule_id: strawberry.ID = strawberry.field(description="The session.")
    kind: AppointmentKindEnum = strawberry.field(  # type: ignore[valid-type]
        default=m.AppointmentKind.FIRST_VISIT, description="What the visit is for."
    )
    reason: str | None = strawberry.field(default=None, description="Why the patient comes.")
    follow_up_id: strawberry.ID | None = strawberry.field(
        default=None, description="A due follow-up of the patient this visit serves."
    )


# ---- operations --------------------------------------------------------------------------------


@strawberry.type
class AppointmentQuery:
    @strawberry.field(description="Sessions of the clinic's timetable, by day.")
    async def schedules(
        self,
        info: Info,
        filter: Annotated[ScheduleFilter | None, strawberry.argument(description="Which sessions.")] = None,
        first: int | None = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor of the previous page.")] = None,
    ) -> Connection[ScheduleType]:
        given = filter or ScheduleFilter()
        filters = appointments.ScheduleFilter(
            department_id=decode_optional_id("Department", given.department_id),
            physician_id=decode_optional_id("User", given.physician_id),
            since=given.from_,
            until=given.to,
            has_availability=given.has_availability,
        )
        page = await appointments.list_schedules(info.context, filters, first=first, after=after)
        return connection(page, ScheduleType.from_row)

    @strawberry.field(description="Free places per day and session of a department's open sessions.")
    async def availability(
        self,
        info: Info,
        department_id: Annotated[strawberry.ID, strawberry.argument(description="The department.")],
        from_: Annotated[date, strawberry.argument(name="from", description="From this day.")],
        to: Annotated[date, strawberry.argument(description="Up to this day (at most 92 days on).")],
    ) -> list[AvailabilityType]:
        found = await appointments.availability(info.context, decode_id("Department", department_id), from_, to)
        return [
            AvailabilityType(
                day=item.day,
                session=m.ClinicSession(item.period),
                sessions=item.sessions,
                capacity=item.capacity,
                free=item.free,
            )
            for item in found
        ]

    @strawberry.field(description="Appointments of the patients in your scope, by slot time (an audited read).")
    async def appointments(
        self,
        info: Info,
        filter: Annotated[AppointmentFilter | None, strawberry.argument(description="Which appointments.")] = None,
        first: int | None = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor of the previous page.")] = None,
    ) -> Connection[AppointmentType]:
        given = filter or AppointmentFilter()
        filters = appointments.AppointmentFilter(
            status=None if given.status is None else m.AppointmentStatus(given.status).value,
            patient_id=decode_optional_id("Patient", given.patient_id),
            physician_id=decode_optional_id("User", given.physician_id),
            department_id=decode_optional_id("Department", given.department_id),
            since=given.from_,
            until=given.to,
        )
        page = await appointments.list_appointments(info.context, filters, first=first, after=after)
        return connection(page, AppointmentType.from_row)

    @strawberry.field(description="Your own appointments, newest first (mini-program).")
    async def my_appointments(self, info: Info) -> list[AppointmentType]:
        return [AppointmentType.from_row(row) for row in await appointments.my_appointments(info.context)]


def _id(kind: str, value: strawberry.ID) -> int:
    return decode_id(kind, value)


@strawberry.type
class AppointmentMutation:
    @strawberry.mutation(description="Book a place for a patient (booked at once; CONFLICT when none is left).")
    async def schedule_appointment(
        self, info: Info, input: Annotated[ScheduleAppointmentInput, strawberry.argument(description="What to book.")]
    ) -> AppointmentType:
        data = appointments.BookInput(
            patient_id=_id("Patient", input.patient_id),
            schedule_id=_id("Schedule", input.schedule_id),
            kind=m.AppointmentKind(input.kind).value,
            reason=input.reason,
            follow_up_id=decode_optional_id("FollowUp", input.follow_up_id),
        )
        return AppointmentType.from_row(await appointments.staff_book(info.context, data))

    @strawberry.mutation(description="Book a due follow-up as a clinic appointment in one step.")
    async def book_follow_up(
        self,
        info: Info,
        follow_up_id: Annotated[strawberry.ID, strawberry.argument(description="The due follow-up.")],
        schedule_id: Annotated[strawberry.ID, strawberry.argument(description="The session.")],
        reason: Annotated[str | None, strawberry.argument(description="A note for the visit.")] = None,
    ) -> AppointmentType:
        row = await appointments.book_follow_up(
            info.context, _id("FollowUp", follow_up_id), _id("Schedule", schedule_id), reason
        )
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="Confirm a patient's requested appointment.")
    async def confirm_appointment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The appointment.")],
        note: Annotated[str | None, strawberry.argument(description="A note for its history.")] = None,
    ) -> AppointmentType:
        row = await appointments.move(info.context, _id("Appointment", id), m.AppointmentStatus.BOOKED, note)
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="The patient has arrived.")
    async def check_in_appointment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The appointment.")],
        note: Annotated[str | None, strawberry.argument(description="A note for its history.")] = None,
    ) -> AppointmentType:
        row = await appointments.move(info.context, _id("Appointment", id), m.AppointmentStatus.CHECKED_IN, note)
        return AppointmentType.from_row(row)

    @strawberry.mutation(
        description="The visit is done; a linked follow-up (followUpId) then takes its outcome (recordFollowUpOutcome)."
    )
    async def complete_appointment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The appointment.")],
        note: Annotated[str | None, strawberry.argument(description="A note for its history.")] = None,
    ) -> AppointmentType:
        row = await appointments.move(info.context, _id("Appointment", id), m.AppointmentStatus.COMPLETED, note)
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="Cancel an appointment (its place is freed).")
    async def cancel_appointment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The appointment.")],
        reason: Annotated[str, strawberry.argument(description="Why (required).")],
    ) -> AppointmentType:
        row = await appointments.move(info.context, _id("Appointment", id), m.AppointmentStatus.CANCELLED, reason)
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="The patient did not come.")
    async def mark_appointment_missed(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The appointment.")],
        note: Annotated[str | None, strawberry.argument(description="A note for its history.")] = None,
    ) -> AppointmentType:
        row = await appointments.move(info.context, _id("Appointment", id), m.AppointmentStatus.MISSED, note)
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="Book a place in a session (mini-program): requested until the clinic confirms.")
    async def book_appointment(
        self,
        info: Info,
        schedule_id: Annotated[strawberry.ID, strawberry.argument(description="The session.")],
        kind: Annotated[AppointmentKindEnum, strawberry.argument(description="What the visit is for.")] = (  # type: ignore[valid-type]
            m.AppointmentKind.FIRST_VISIT
        ),
        reason: Annotated[str | None, strawberry.argument(description="Why you come.")] = None,
    ) -> AppointmentType:
        row = await appointments.patient_book(
            info.context, _id("Schedule", schedule_id), m.AppointmentKind(kind).value, reason
        )
        return AppointmentType.from_row(row)

    @strawberry.mutation(description="Cancel your own appointment (mini-program), until the cancellation window.")
    async def cancel_my_appointment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Your appointment.")],
        reason: Annotated[str | None, strawberry.argument(description="Why (optional).")] = None,
    ) -> AppointmentType:
        row = await appointments.cancel_mine(info.context, _id("Appointment", id), reason)
        return AppointmentType.from_row(row)
