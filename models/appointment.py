"""Doctor schedules (a physician's session on a day, with its places) and the appointments booked into them.

Booking is made safe in the database, not in code: a place is taken by one conditional UPDATE of the
schedule's `booked` count (`booked < capacity`), and one patient holds at most one appointment per session by a
unique key over (schedule, the record it was booked for, `active`), where `active` is 1 while the appointment
holds its place (every status but cancelled) and NULL once cancelled (NULLs never collide, on SQLite and
MariaDB alike). Its place number is unique the same way, so two bookings never share a slot time. `booked`
counts the places held. The key names the record a place was booked for (`booked_for_id`), not its owner:
merging two records of one person moves the duplicate's appointments to the record kept (and unmerging moves
them back) without colliding.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, LongText, UTCDateTime, created_at_field, instant_field, updated_at_field


class ClinicSession(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"
    CUSTOM = "custom"  # explicit start and end


# A session's default hours (clinic time) when the plan names the session only.
SESSION_HOURS: dict[ClinicSession, tuple[time, time]] = {
    ClinicSession.MORNING: (time(8, 0), time(12, 0)),
    ClinicSession.AFTERNOON: (time(13, 30), time(17, 30)),
    ClinicSession.EVENING: (time(18, 0), time(21, 0)),
}


class ScheduleStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # no new bookings; existing ones stand
    CANCELLED = "cancelled"  # the session will not take place; its appointments are cancelled


class AppointmentKind(StrEnum):
    FIRST_VISIT = "first_visit"
    FOLLOW_UP = "follow_up"
    TELECONSULTATION = "teleconsultation"


class AppointmentStatus(StrEnum):
    REQUESTED = "requested"  # booked by the patient, waiting for the clinic to confirm
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    MISSED = "missed"


ACTIVE_STATUSES = frozenset({AppointmentStatus.REQUESTED, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN})

# The allowed status changes; anything else is a CONFLICT.
TRANSITIONS: dict[AppointmentStatus, frozenset[AppointmentStatus]] = {
    AppointmentStatus.REQUESTED: frozenset({AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED}),
    AppointmentStatus.BOOKED: frozenset(
        {AppointmentStatus.CHECKED_IN, AppointmentStatus.CANCELLED, AppointmentStatus.MISSED}
    ),
    AppointmentStatus.CHECKED_IN: frozenset({AppointmentStatus.COMPLETED}),
    AppointmentStatus.COMPLETED: frozenset(),
    AppointmentStatus.CANCELLED: frozenset(),
    AppointmentStatus.MISSED: frozenset(),
}


class BookedVia(StrEnum):
    PATIENT = "patient"  # the mini-program
    STAFF = "staff"


class Schedule(SQLModel, table=True):
    """One physician's session on one day: its hours (clinic time), slot length, places and where."""

    __tablename__ = "schedule"
    __table_args__ = (
        UniqueConstraint("physician_id", "day", "start_time", name="uq_schedule_physician_day_start"),
        Index("ix_schedule_department_day", "department_id", "day"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    physician_id: int = Field(foreign_key="app_user.id", index=True)
    department_id: int = Field(foreign_key="department.id")
    day: date = Field(index=True)
    period: str = Field(default=ClinicSession.MORNING.value, max_length=16)  # the session of the day
    start_time: time
    end_time: time
    slot_minutes: int = 15
    capacity: int
    booked: int = 0  # places held (appointments not cancelled), changed only by conditional updates
    status: str = Field(default=ScheduleStatus.OPEN.value, max_length=16, index=True)
    location: str | None = Field(default=None, max_length=100)
    cancel_reason: str | None = Field(default=None, max_length=255)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    version: int = 1


class Appointment(SQLModel, table=True):
    __tablename__ = "appointment"
    __table_args__ = (
        UniqueConstraint("schedule_id", "booked_for_id", "active", name="uq_appointment_one_active_per_session"),
        UniqueConstraint("schedule_id", "place", "active", name="uq_appointment_place"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    booked_for_id: int = Field(foreign_key="patient.id")  # the record booked (stays through merges)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    place: int  # 1..capacity: the order of arrival the slot time is computed from
    slot_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    kind: str = Field(default=AppointmentKind.FIRST_VISIT.value, max_length=24)
    reason: str | None = Field(default=None, sa_type=LongText)
    status: str = Field(default=AppointmentStatus.BOOKED.value, max_length=16, index=True)
    # 1 while it holds its place, NULL once cancelled (see the module's docstring); no default: the ORM would put
    # a default in place of a None given, so every insert says which it is
    active: int | None = None
    follow_up_id: int | None = Field(default=None, foreign_key="follow_up.id", index=True)
    booked_via: str = Field(default=BookedVia.STAFF.value, max_length=16)
    booked_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    cancel_reason: str | None = Field(default=None, max_length=255)
    reminded_at: datetime | None = instant_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    version: int = 1


class AppointmentStatusChange(SQLModel, table=True):
    """An appointment's history: every status change, by whom (none: the platform), when, with a note."""

    __tablename__ = "appointment_status_change"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="appointment.id", index=True)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    changed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    note: str | None = Field(default=None, max_length=255)
    changed_at: datetime = created_at_field()
