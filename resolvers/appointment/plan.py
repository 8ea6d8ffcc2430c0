"""A schedule plan as a file: the sessions a caller manages exported in the import's own format (imported back, it
changes nothing), and the plan's template. Cells that could run as formulas are escaped (spreadsheet.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.appointment import Schedule, ScheduleStatus
from models.organisation import Department
from models.user import User
from resolvers.appointment import spreadsheet as sheet
from resolvers.appointment.queries import ScheduleFilter, schedule_conditions
from resolvers.data.context import Context


@dataclass
class PlanFile:
    filename: str
    content_type: str
    data: bytes
    rows: int

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def _file(name: str, rows: list[list[Any]], file_format: str, language: str) -> PlanFile:
    if file_format == "csv":
        return PlanFile(f"{name}.csv", sheet.CSV_TYPE, sheet.write_csv(rows, language), len(rows))
    return PlanFile(f"{name}.xlsx", sheet.XLSX_TYPE, sheet.write_xlsx(rows, language), len(rows))


async def export_schedules(ctx: Context, filters: ScheduleFilter, file_format: str, language: str) -> PlanFile:
    """The sessions managed by the caller in the plan's own format (cancelled ones left out): imported back, it
    changes nothing."""
    data = ctx.data
    conditions = [
        *await schedule_conditions(ctx, filters, limit=False),
        Schedule.status != ScheduleStatus.CANCELLED.value,
    ]
    limit = ctx.settings.schedule_import_max_rows
    statement = await data.select(
        Schedule,
        purpose="manage",
        then=lambda s: s.where(*conditions).order_by(Schedule.day, Schedule.start_time, Schedule.id).limit(limit),
    )
    schedules = await data.objects(statement)
    names = dict(
        await data.rows(
            await data.select(
                User,
                User.id,
                User.username,
                purpose="name",
                then=lambda s: s.where(User.id.in_(sorted({row.physician_id for row in schedules}))),
            )
        )
    )
    codes = dict(await data.rows(await data.select(Department, Department.id, Department.code)))
    rows = [
        [
            row.day.isoformat(),
            row.period,
            row.start_time.strftime("%H:%M"),
            row.end_time.strftime("%H:%M"),
            names.get(row.physician_id, ""),
            codes.get(row.department_id, ""),
            row.capacity,
            row.slot_minutes,
            row.location or "",
        ]
        for row in schedules
    ]
    return _file("schedules", rows, file_format, language)


def template(file_format: str, language: str, today: date) -> PlanFile:
    """The plan's columns with two example rows (next week's)."""
    day = today + timedelta(days=7)
    rows: list[list[Any]] = [
        [day.isoformat(), "morning", "08:00", "12:00", "physician", "", 20, 15, "门诊楼 3 层 12 诊室"],
        [day.isoformat(), "custom", "14:00", "16:00", "physician", "", 8, 15, "Clinic 12"],
    ]
    return _file("schedule-template", rows, file_format, language)
