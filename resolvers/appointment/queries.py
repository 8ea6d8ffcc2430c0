"""Reading schedules, free places and appointments: scoped by the tables' reach, appointment lists audited as
reads of their patients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import func
from strawberry.dataloader import DataLoader

from core.errors import bad_input
from models.appointment import Appointment, AppointmentStatus, AppointmentStatusChange, Schedule, ScheduleStatus
from models.organisation import Department
from models.patient import Patient
from models.user import User
from resolvers.appointment.common import at_clinic, stored_instant
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.patient import my_patient_id

MAX_RANGE_DAYS = 92
_MIDNIGHT = time(0, 0)


EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)


def check_range(since: date | None, until: date | None, *, limit: bool = True) -> None:
    """Dates of a filter: plausible, in order, and (for lists) at most MAX_RANGE_DAYS apart."""
    for value, field in ((since, "from"), (until, "to")):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise bad_input("Date out of range", field)
    if since is not None and until is not None:
        if until < since:
            raise bad_input("`to` is before `from`", "to")
        if limit and (until - since).days > MAX_RANGE_DAYS:
            raise bad_input(f"At most {MAX_RANGE_DAYS} days at a time", "to")


@dataclass
class ScheduleFilter:
    department_id: int | None = None
    physician_id: int | None = None
    since: date | None = None
    until: date | None = None
    has_availability: bool | None = None


async def schedule_conditions(ctx: Context, filters: ScheduleFilter, *, limit: bool = True) -> list[Any]:
    """The conditions of a schedule filter, for the timetable's list and the plan's export alike: its dates checked
    (at most MAX_RANGE_DAYS apart where `limit`), its department and physician NOT_FOUND unless on the timetable."""
    check_range(filters.since, filters.until, limit=limit)
    data = ctx.data
    await data.reach_or_not_found(Department, filters.department_id, purpose="scheduled", what="Department")
    await data.reach_or_not_found(User, filters.physician_id, purpose="scheduled", what="Physician")
    conditions: list[Any] = []
    if filters.department_id is not None:
        conditions.append(Schedule.department_id == filters.department_id)
    if filters.physician_id is not None:
        conditions.append(Schedule.physician_id == filters.physician_id)
    if filters.since is not None:
        conditions.append(Schedule.day >= filters.since)
    if filters.until is not None:
        conditions.append(Schedule.day <= filters.until)
    if filters.has_availability is True:
        conditions += [Schedule.status == ScheduleStatus.OPEN.value, Schedule.booked < Schedule.capacity]
    elif filters.has_availability is False:
        conditions.append((Schedule.status != ScheduleStatus.OPEN.value) | (Schedule.booked >= Schedule.capacity))
    return conditions


async def list_schedules(ctx: Context, filters: ScheduleFilter, *, first: int | None, after: str | None) -> Page[Any]:
    data = ctx.data
    conditions = await schedule_conditions(ctx, filters)
    statement = await data.select(Schedule, then=lambda s: s.where(*conditions))
    return await data.page(
        statement,
        keys=[Schedule.day, Schedule.id],
        key_of=lambda row: [row.day.isoformat(), row.id],
        first=first,
        after=after,
    )


@dataclass
class Availability:
    day: date
    period: str
    sessions: int
    capacity: int
    booked: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)


async def availability(ctx: Context, department_id: int, since: date, until: date) -> list[Availability]:
    """Free places per day and session of a department's open sessions (the department and those below it are
    not mixed in: each department books its own)."""
    check_range(since, until)
    data = ctx.data
    await data.reach_or_not_found(Department, department_id, purpose="scheduled", what="Department")
    statement = await data.select(
        Schedule,
        Schedule.day,
        Schedule.period,
        func.count(Schedule.id),
        func.sum(Schedule.capacity),
        func.sum(Schedule.booked),
        then=lambda s: (
            s.where(
                Schedule.department_id == department_id,
                Schedule.status == ScheduleStatus.OPEN.value,
                Schedule.day >= max(since, ctx.today()),
                Schedule.day <= until,
            )
            .group_by(Schedule.day, Schedule.period)
            .order_by(Schedule.day, Schedule.period)
        ),
    )
    return [
        Availability(day=day, period=period, sessions=int(count), capacity=int(capacity or 0), booked=int(booked or 0))
        for day, period, count, capacity, booked in await data.rows(statement)
    ]


@dataclass
class AppointmentFilter:
    status: str | None = None
    patient_id: int | None = None
    physician_id: int | None = None
    department_id: int | None = None
    since: date | None = None
    until: date | None = None


async def list_appointments(
    ctx: Context, filters: AppointmentFilter, *, first: int | None, after: str | None
) -> Page[Appointment]:
    check_range(filters.since, filters.until)
    data = ctx.data
    await data.reach_or_not_found(Patient, filters.patient_id, what="Patient")
    await data.reach_or_not_found(User, filters.physician_id, purpose="scheduled", what="Physician")
    await data.reach_or_not_found(Department, filters.department_id, purpose="scheduled", what="Department")
    zone = ctx.settings.clinic_tz
    conditions: list[Any] = []
    if filters.status is not None:
        conditions.append(Appointment.status == AppointmentStatus(filters.status).value)
    if filters.patient_id is not None:
        conditions.append(Appointment.patient_id == filters.patient_id)
    if filters.since is not None:
        conditions.append(Appointment.slot_at >= at_clinic(filters.since, _MIDNIGHT, zone))
    if filters.until is not None:
        conditions.append(Appointment.slot_at < at_clinic(filters.until + timedelta(days=1), _MIDNIGHT, zone))
    if filters.physician_id is not None or filters.department_id is not None:
        of_session = []
        if filters.physician_id is not None:
            of_session.append(Schedule.physician_id == filters.physician_id)
        if filters.department_id is not None:
            of_session.append(Schedule.department_id == filters.department_id)
        sessions = await data.select(Schedule, Schedule.id, then=lambda s: s.where(*of_session))
        conditions.append(Appointment.schedule_id.in_(sessions.scalar_subquery()))
    statement = await data.select(Appointment, then=lambda s: s.where(*conditions))
    page = await data.page(
        statement,
        keys=[Appointment.slot_at, Appointment.id],
        key_of=lambda row: [stored_instant(row.slot_at), row.id],
        first=first,
        after=after,
    )
    await data.record_reads({row.patient_id for row in page.items}, action="read", operation="appointments")
    return page


async def my_appointments(ctx: Context) -> list[Appointment]:
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        return []
    statement = await ctx.data.select(
        Appointment,
        then=lambda s: s.where(Appointment.patient_id == patient_id).order_by(Appointment.slot_at.desc()).limit(200),
    )
    rows = await ctx.data.objects(statement)
    # every read of an appointment list is a read of that patient's record, the patient's own included (myRecord)
    await ctx.data.record_reads([patient_id], action="read", operation="myAppointments")
    return rows


async def schedules_by_ids(ctx: Context, ids: list[int]) -> dict[int, Schedule]:
    statement = await ctx.data.select(Schedule, then=lambda s: s.where(Schedule.id.in_(ids)))
    return {row.id: row for row in await ctx.data.objects(statement)}


class AppointmentLoaders:
    """Per request, within the caller's reach: sessions and status histories by id."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.schedule_by_id: DataLoader[int, Schedule | None] = DataLoader(self._schedules)
        self.history_by_appointment_id: DataLoader[int, list[AppointmentStatusChange]] = DataLoader(self._history)

    async def _schedules(self, ids: Sequence[int]) -> list[Schedule | None]:
        found = await schedules_by_ids(self._ctx, list(ids))
        return [found.get(pk) for pk in ids]

    async def _history(self, ids: Sequence[int]) -> list[list[AppointmentStatusChange]]:
        data = self._ctx.data
        statement = await data.select(
            AppointmentStatusChange,
            then=lambda s: s.where(AppointmentStatusChange.appointment_id.in_(list(ids))).order_by(
                AppointmentStatusChange.id
            ),
        )
        grouped: dict[int, list[AppointmentStatusChange]] = {pk: [] for pk in ids}
        for row in await data.objects(statement):
            grouped[row.appointment_id].append(row)
        return [grouped[pk] for pk in ids]


def appointment_loaders(ctx: Context) -> AppointmentLoaders:
    return ctx.loaders_of(AppointmentLoaders)
