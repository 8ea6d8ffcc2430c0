"""Importing a schedule plan, exporting schedules in the same format, and the plan's template.

An import checks every row first and answers a per-row report; a plan with any problem writes nothing. Rows are
keyed by (physician, day, start): the same plan imported again changes nothing, a changed row updates its
session, and a capacity below the places already booked is refused for that row. The writes are one unit.
The plan's export and template (the same format) are in plan.py.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from core.errors import bad_input, conflict
from core.files import FileUpload
from core.timeutil import utcnow
from models.appointment import SESSION_HOURS, ClinicSession, Schedule, ScheduleStatus
from models.organisation import Department
from models.role import Role, UserRole
from models.user import User
from policies.reach import admits
from policies.roles import holds_physician_role
from resolvers.appointment import spreadsheet as sheet
from resolvers.appointment.spreadsheet import PlanError, PlanRow, Problem
from resolvers.data.context import Context

MAX_CAPACITY = 500
MAX_DAYS_AHEAD = 366
SESSION_WORDS = {
    "上午": ClinicSession.MORNING,
    "下午": ClinicSession.AFTERNOON,
    "晚上": ClinicSession.EVENING,
    "夜间": ClinicSession.EVENING,
    **{session.value: session for session in ClinicSession},
}
REPORTED_PROBLEMS = 1000  # a report names at most this many (the count is whole)


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    written: bool = False


@dataclass
class Planned:
    """One row of the plan, checked: the session it describes."""

    number: int
    physician_id: int
    department_id: int
    day: date
    period: str
    start: time
    end: time
    slot_minutes: int
    capacity: int
    location: str | None


def _same(row: Planned, existing: Schedule) -> bool:
    return (
        existing.end_time == row.end
        and existing.period == row.period
        and existing.slot_minutes == row.slot_minutes
        and existing.capacity == row.capacity
        and (existing.location or None) == row.location
        and existing.department_id == row.department_id
    )


class _Checker:
    def __init__(self, ctx: Context, rows: list[PlanRow]) -> None:
        self.ctx = ctx
        self.rows = rows
        self.problems: list[Problem] = []
        self.physicians: set[int] = set()

    def fail(self, row: int, column: str | None, message: str) -> None:
        self.problems.append(Problem(row, column, message))

    async def check(self) -> list[Planned]:
        ctx = self.ctx
        access = await ctx.access()
        usernames = {sheet.text_cell(row.cells.get("physician")) for row in self.rows} - {""}
        codes = {sheet.text_cell(row.cells.get("department")) for row in self.rows} - {""}
        users = {
            username: (user_id, department_id)
            for user_id, username, department_id in await ctx.data.rows(
                await ctx.data.select(
                    User,
                    User.id,
                    User.username,
                    User.department_id,
                    purpose="name",
                    then=lambda s: s.where(User.username.in_(sorted(usernames))),
                )
            )
        }
        self.physicians = await self._physicians(sorted({user_id for user_id, _department in users.values()}))
        departments = {
            code: department_id
            for department_id, code in await ctx.data.rows(
                await ctx.data.select(
                    Department,
                    Department.id,
                    Department.code,
                    then=lambda s: s.where(Department.code.in_(sorted(codes))),
                )
            )
        }
        today = ctx.today()
        planned: list[Planned] = []
        for row in self.rows:
            found = self._row(row, users, departments, today)
            if found is None:
                continue
            values = {"department_id": found.department_id, "physician_id": found.physician_id}
            if not admits(Schedule, access, values, "manage"):  # the one rule of who manages a session
                self.fail(row.number, "Physician", "This physician's schedule is outside your scope")
                continue
            planned.append(found)
        planned = await self._open_departments(planned)
        self._duplicates_and_overlaps(planned)
        return planned

    async def _physicians(self, user_ids: list[int]) -> set[int]:
        """Which of these accounts hold a physician role (policies/roles.py), in one look-up."""
        if not user_ids:
            return set()
        data = self.ctx.data
        statement = await data.select(
            UserRole,
            UserRole.user_id,
            Role.key,
            purpose="name",
            then=lambda s: s.join(Role, Role.id == UserRole.role_id).where(UserRole.user_id.in_(user_ids)),
        )
        keys: dict[int, set[str]] = {}
        for user_id, key in await data.rows(statement):
            keys.setdefault(user_id, set()).add(key)
        policy = self.ctx.services.policy
        return {user_id for user_id, held in keys.items() if holds_physician_role(policy, held)}

    async def _open_departments(self, planned: list[Planned]) -> list[Planned]:
        """A disabled department takes no new schedules (resolvers/organisation.py open_department's rule)."""
        ids = sorted({row.department_id for row in planned})
        statement = await self.ctx.data.select(
            Department, Department.id, then=lambda s: s.where(Department.id.in_(ids), Department.disabled.is_(True))
        )
        disabled = set(await self.ctx.data.scalars(statement)) if ids else set()
        for row in planned:
            if row.department_id in disabled:
                self.fail(row.number, "Department", "That department is disabled: it takes no new schedules")
        return [row for row in planned if row.department_id not in disabled]

    def _row(
        self, row: PlanRow, users: dict[str, tuple[int, int | None]], departments: dict[str, int], today: date
    ) -> Planned | None:
        before = len(self.problems)
        cells = row.cells
        for column in sheet.COLUMNS:
            if sheet.is_formula(cells.get(column.key)):
                self.fail(row.number, column.en, "A formula is not accepted: type the value (or start it with ')")
        if len(self.problems) > before:
            return None
        day = sheet.date_cell(cells.get("date"))
        if day is None:
            self.fail(row.number, "Date", "Not a date (YYYY-MM-DD)")
        elif day < today:
            self.fail(row.number, "Date", "The date is in the past")
        elif day > today + timedelta(days=MAX_DAYS_AHEAD):
            self.fail(row.number, "Date", f"More than {MAX_DAYS_AHEAD} days ahead")
        physician = users.get(sheet.text_cell(cells.get("physician")))
        if physician is None:
            self.fail(row.number, "Physician", "Unknown physician (give the account's username)")
        elif physician[0] not in self.physicians:
            self.fail(row.number, "Physician", "This account holds no physician role: it cannot hold sessions")
        code = sheet.text_cell(cells.get("department"))
        department_id = departments.get(code) if code else (physician[1] if physician else None)
        if code and department_id is None:
            self.fail(row.number, "Department", "Unknown department code")
        elif physician is not None and department_id is None:
            self.fail(row.number, "Department", "The physician has no department: give its code")
        session_word = sheet.text_cell(cells.get("session")).casefold()
        session = SESSION_WORDS.get(session_word) if session_word else None
        if session_word and session is None:
            self.fail(row.number, "Session", "Session: morning, afternoon, evening (上午, 下午, 晚上) or custom")
        start_given, end_given = cells.get("start"), cells.get("end")
        start = sheet.time_cell(start_given) if sheet.text_cell(start_given) else None
        end = sheet.time_cell(end_given) if sheet.text_cell(end_given) else None
        if sheet.text_cell(start_given) and start is None:
            self.fail(row.number, "Start", "Not a time (HH:MM)")
        if sheet.text_cell(end_given) and end is None:
            self.fail(row.number, "End", "Not a time (HH:MM)")
        if session in SESSION_HOURS:
            default_start, default_end = SESSION_HOURS[session]  # type: ignore[index]
            start, end = start or default_start, end or default_end
        elif (start is None and not sheet.text_cell(start_given)) or (end is None and not sheet.text_cell(end_given)):
            self.fail(row.number, "Session", "Give a session (morning, afternoon, evening), or a start and an end")
        if start is not None and end is not None and end <= start:
            self.fail(row.number, "End", "The end is not after the start")
        capacity = sheet.int_cell(cells.get("capacity"))
        if capacity is None or not 1 <= capacity <= MAX_CAPACITY:
            self.fail(row.number, "Capacity", f"Capacity must be a whole number from 1 to {MAX_CAPACITY}")
        slot_text = sheet.text_cell(cells.get("slot_minutes"))
        slot = sheet.int_cell(cells.get("slot_minutes")) if slot_text else 15
        if slot is None or not 5 <= slot <= 240:
            self.fail(row.number, "Slot minutes", "Slot minutes must be a whole number from 5 to 240")
        location = sheet.text_cell(cells.get("location")) or None
        if location is not None and (len(location) > 100 or not location.isprintable()):
            self.fail(row.number, "Location", "At most 100 printable characters")
        if len(self.problems) > before:
            return None
        assert day and physician and department_id and start and end and capacity and slot  # checked above
        return Planned(
            number=row.number,
            physician_id=physician[0],
            department_id=department_id,
            day=day,
            period=(session or ClinicSession.CUSTOM).value,
            start=start,
            end=end,
            slot_minutes=slot,
            capacity=capacity,
            location=location,
        )

    def _duplicates_and_overlaps(self, planned: list[Planned]) -> None:
        seen: dict[tuple[int, date, time], int] = {}
        by_day: dict[tuple[int, date], list[Planned]] = {}
        for row in planned:
            key = (row.physician_id, row.day, row.start)
            if key in seen:
                self.fail(row.number, None, f"Duplicate of row {seen[key]} (same physician, date and start)")
                continue
            seen[key] = row.number
            by_day.setdefault((row.physician_id, row.day), []).append(row)
        for rows in by_day.values():
            rows.sort(key=lambda item: item.start)
            for earlier, later in itertools.pairwise(rows):
                if later.start < earlier.end:
                    self.fail(later.number, "Start", f"Overlaps row {earlier.number}: one physician, two sessions")


async def _existing(ctx: Context, planned: list[Planned]) -> list[Schedule]:
    if not planned:
        return []
    physicians = sorted({row.physician_id for row in planned})
    first, last = min(row.day for row in planned), max(row.day for row in planned)
    statement = await ctx.data.select(
        Schedule,
        then=lambda s: s.where(Schedule.physician_id.in_(physicians), Schedule.day >= first, Schedule.day <= last),
    )
    return await ctx.data.objects(statement)


async def import_schedules(ctx: Context, upload: FileUpload, *, dry_run: bool) -> ImportReport:
    settings = ctx.settings
    if upload.size > settings.schedule_import_max_bytes:
        raise bad_input(f"The file is larger than {settings.schedule_import_max_bytes} bytes", "file")
    if upload.size == 0:
        raise bad_input("The file is empty", "file")
    report = ImportReport(dry_run=dry_run)
    try:
        rows = sheet.read_plan(upload.data, upload.filename, settings.schedule_import_max_rows)
    except PlanError as error:
        return _finish(report, error.problems)
    report.rows = len(rows)
    checker = _Checker(ctx, rows)
    planned = await checker.check()
    stored = await _existing(ctx, planned)
    existing = {(row.physician_id, row.day, row.start_time): row for row in stored}
    in_plan = {(row.physician_id, row.day, row.start) for row in planned}
    others: dict[tuple[int, date], list[Schedule]] = {}
    for schedule in stored:  # sessions of the same days the plan does not name: a new row must not overlap them
        key = (schedule.physician_id, schedule.day, schedule.start_time)
        if key not in in_plan and schedule.status != ScheduleStatus.CANCELLED.value:
            others.setdefault((schedule.physician_id, schedule.day), []).append(schedule)
    creates: list[Planned] = []
    updates: list[tuple[Planned, Schedule]] = []
    for row in planned:
        found = existing.get((row.physician_id, row.day, row.start))
        clash = any(
            other.start_time < row.end and row.start < other.end_time
            for other in others.get((row.physician_id, row.day), ())
        )
        if clash:
            checker.fail(row.number, "Start", "Overlaps a session of this physician already scheduled")
        elif found is None:
            creates.append(row)
        elif _same(row, found):
            report.unchanged += 1
        elif found.status == ScheduleStatus.CANCELLED.value:
            checker.fail(row.number, None, "This session was cancelled: it cannot be changed")
        elif row.capacity < found.booked:
            checker.fail(row.number, "Capacity", f"Capacity below the {found.booked} places already booked")
        else:
            updates.append((row, found))
    report.created, report.updated = len(creates), len(updates)
    if checker.problems or dry_run:
        return _finish(report, checker.problems)
    if creates or updates:
        await _write(ctx, upload, creates, updates)
    report.written = True
    return report


def _finish(report: ImportReport, problems: list[Problem]) -> ImportReport:
    problems.sort(key=lambda problem: problem.row)
    report.problem_count = len(problems)
    report.problems = problems[:REPORTED_PROBLEMS]
    if problems:
        report.created = report.updated = report.unchanged = 0
    return report


async def _write(
    ctx: Context, upload: FileUpload, creates: list[Planned], updates: list[tuple[Planned, Schedule]]
) -> None:
    me = ctx.principal.user_id
    async with ctx.data.write(
        operation="importSchedules",
        action="import",
        entity_type="Schedule",
        conflict_message="Another import created some of these sessions at the same time: import again",
    ) as unit:
        for row, found in updates:
            changed = await unit.execute(
                (await ctx.data.update(Schedule, purpose="manage"))
                .where(Schedule.id == found.id, Schedule.version == found.version, Schedule.booked <= row.capacity)
                .values(
                    end_time=row.end,
                    period=row.period,
                    slot_minutes=row.slot_minutes,
                    capacity=row.capacity,
                    location=row.location,
                    department_id=row.department_id,
                    version=found.version + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if changed != 1:
                raise conflict(f"Row {row.number}: the session changed while importing (places booked?); import again")
        now = utcnow()
        await unit.insert_many(
            Schedule,
            [
                {
                    "physician_id": row.physician_id,
                    "department_id": row.department_id,
                    "day": row.day,
                    "period": row.period,
                    "start_time": row.start,
                    "end_time": row.end,
                    "slot_minutes": row.slot_minutes,
                    "capacity": row.capacity,
                    "booked": 0,
                    "status": ScheduleStatus.OPEN.value,
                    "location": row.location,
                    "cancel_reason": None,
                    "created_by_id": me,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for row in creates
            ],
        )
        unit.detail = {
            "file": upload.filename,
            "sha256": hashlib.sha256(upload.data).hexdigest(),
            "created": len(creates),
            "updated": len(updates),
        }
