"""Demo data of schedules and appointments: a month of clinic sessions around today (two weeks back, two on) for
the demo physicians, and appointments in believable states: past ones mostly completed, some missed or
cancelled; coming ones booked, some requested from the mini-program or cancelled; today's checked in or booked.
Generated deterministically (a fixed seed), about one appointment per patient and a few more."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.appointment import (
    SESSION_HOURS,
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AppointmentStatusChange,
    BookedVia,
    ClinicSession,
    Schedule,
)
from models.clinical import FollowUp, FollowUpStatus
from models.patient import Patient

DEMO_ZONE = ZoneInfo("Asia/Shanghai")
# physician username -> (sessions on weekdays 0-4, room)
ROTA = {
    "chief": ({0: "morning", 2: "morning", 3: "afternoon"}, "门诊楼 3 层 301 诊室"),
    "physician": ({0: "afternoon", 1: "morning", 2: "afternoon", 4: "morning"}, "门诊楼 3 层 305 诊室"),
    "physician2": ({1: "afternoon", 3: "morning", 4: "afternoon"}, "门诊楼 2 层 206 诊室"),
}
REASONS = ["便血复查", "肛周疼痛", "术后复诊", "肠镜结果解读", "排便习惯改变", "换药", None]


def _slot(schedule: Schedule, place: int) -> datetime:
    minutes = (
        datetime.combine(schedule.day, schedule.end_time) - datetime.combine(schedule.day, schedule.start_time)
    ).seconds // 60
    slots = max(1, minutes // schedule.slot_minutes)
    offset = (place - 1) * slots // schedule.capacity * schedule.slot_minutes
    return datetime.combine(schedule.day, schedule.start_time, tzinfo=DEMO_ZONE) + timedelta(minutes=offset)


async def seed_appointments(session: AsyncSession, *, users: dict[str, int], today: date) -> None:
    departments: dict[int | None, int | None] = dict(
        (await session.execute(select(Patient.attending_physician_id, Patient.department_id))).all()  # type: ignore[arg-type]
    )
    if not departments:  # seeded without demo patients (the benchmark data set)
        return
    rng = random.Random(20261201)  # noqa: S311  (demo data, reproducible)
    schedules: list[Schedule] = []
    for username, (rota, room) in ROTA.items():
        physician = users.get(username)
        department = departments.get(physician)
        if physician is None or department is None:
            continue
        for offset in range(-14, 15):
            day = today + timedelta(days=offset)
            name = rota.get(day.weekday())
            if name is None:
                continue
            start, end = SESSION_HOURS[ClinicSession(name)]
            schedule = Schedule(
                physician_id=physician,
                department_id=department,
                day=day,
                period=name,
                start_time=start,
                end_time=end,
                slot_minutes=15,
                capacity=rng.choice([12, 16, 20]),
                location=room,
            )
            session.add(schedule)
            schedules.append(schedule)
    await session.flush()
    patients = (await session.execute(select(Patient.id, Patient.attending_physician_id).order_by(Patient.id))).all()
    open_follow_ups: dict[int, list[int]] = {}
    for follow_up_id, patient_id in (
        await session.execute(
            select(FollowUp.id, FollowUp.patient_id).where(FollowUp.status == FollowUpStatus.SCHEDULED.value)
        )
    ).all():
        open_follow_ups.setdefault(patient_id, []).append(follow_up_id)
    by_physician: dict[int, list[Schedule]] = {}
    for schedule in schedules:
        by_physician.setdefault(schedule.physician_id, []).append(schedule)
    taken: dict[int, set[int]] = {}
    held: set[tuple[int, int]] = set()
    for index, (patient_id, physician_id) in enumerate(patients):
        own = by_physician.get(physician_id)
        if not own:
            continue
        for _ in range(2 if index % 3 == 0 else 1):
            schedule = rng.choice(own)
            places = taken.setdefault(schedule.id, set())  # type: ignore[arg-type]
            if len(places) >= schedule.capacity or (schedule.id, patient_id) in held:  # type: ignore[comparison-overlap]
                continue
            place = min(set(range(1, schedule.capacity + 1)) - places)
            _book(session, rng, schedule, place, patient_id, users, today, open_follow_ups)
            places.add(place)
            held.add((schedule.id, patient_id))  # type: ignore[arg-type]
    await session.flush()
    await _history_and_counts(session, users, schedules)


_PAST = [(AppointmentStatus.COMPLETED, 75), (AppointmentStatus.MISSED, 12), (AppointmentStatus.CANCELLED, 13)]
_COMING = [(AppointmentStatus.BOOKED, 70), (AppointmentStatus.REQUESTED, 15), (AppointmentStatus.CANCELLED, 15)]
_TODAY = [(AppointmentStatus.CHECKED_IN, 40), (AppointmentStatus.BOOKED, 60)]


def _book(
    session: AsyncSession,
    rng: random.Random,
    schedule: Schedule,
    place: int,
    patient_id: int,
    users: dict[str, int],
    today: date,
    open_follow_ups: dict[int, list[int]],
) -> None:
    table = _PAST if schedule.day < today else _TODAY if schedule.day == today else _COMING
    status = rng.choices([s for s, _ in table], weights=[w for _, w in table])[0]
    via = BookedVia.PATIENT if status is AppointmentStatus.REQUESTED or rng.random() < 0.3 else BookedVia.STAFF
    kind = rng.choice([AppointmentKind.FIRST_VISIT, AppointmentKind.FOLLOW_UP, AppointmentKind.FOLLOW_UP])
    follow_up = None
    if kind is AppointmentKind.FOLLOW_UP and schedule.day >= today and open_follow_ups.get(patient_id):
        follow_up = open_follow_ups[patient_id].pop(0)
    made = datetime.combine(schedule.day - timedelta(days=rng.randint(2, 10)), time(9, 0), tzinfo=DEMO_ZONE)
    appointment = Appointment(
        patient_id=patient_id,
        booked_for_id=patient_id,
        schedule_id=schedule.id,  # type: ignore[arg-type]
        place=place,
        slot_at=_slot(schedule, place),
        kind=kind.value,
        reason=rng.choice(REASONS),
        status=status.value,
        follow_up_id=follow_up,
        booked_via=via.value,
        booked_by_id=users.get("patient") if via is BookedVia.PATIENT else schedule.physician_id,
        cancel_reason="患者临时有事 (the patient cannot come)" if status is AppointmentStatus.CANCELLED else None,
        created_at=made,
        updated_at=made,
    )
    appointment.active = None if status is AppointmentStatus.CANCELLED else 1
    session.add(appointment)


_PATHS = {
    AppointmentStatus.REQUESTED: [AppointmentStatus.REQUESTED],
    AppointmentStatus.BOOKED: [AppointmentStatus.BOOKED],
    AppointmentStatus.CHECKED_IN: [AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN],
    AppointmentStatus.COMPLETED: [AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED],
    AppointmentStatus.MISSED: [AppointmentStatus.BOOKED, AppointmentStatus.MISSED],
    AppointmentStatus.CANCELLED: [AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED],
}


async def _history_and_counts(session: AsyncSession, users: dict[str, int], schedules: list[Schedule]) -> None:
    booked: dict[int, int] = {}
    for appointment in (await session.execute(select(Appointment))).scalars().all():
        if appointment.active:
            booked[appointment.schedule_id] = booked.get(appointment.schedule_id, 0) + 1
        previous: str | None = None
        at = appointment.created_at
        for step in _PATHS[AppointmentStatus(appointment.status)]:
            by = None if step is AppointmentStatus.MISSED else appointment.booked_by_id
            session.add(
                AppointmentStatusChange(
                    appointment_id=appointment.id,  # type: ignore[arg-type]
                    from_status=previous,
                    to_status=step.value,
                    changed_by_id=by,
                    note=appointment.cancel_reason if step is AppointmentStatus.CANCELLED else None,
                    changed_at=at,
                )
            )
            previous = step.value
            at = max(at, appointment.slot_at) + timedelta(minutes=10)
    for schedule in schedules:
        schedule.booked = booked.get(schedule.id, 0)  # type: ignore[arg-type]
    await session.flush()
