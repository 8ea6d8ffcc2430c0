"""Managing doctor schedules (chief physicians and above, `capability:schedule.manage`): the schedule plan's import,
export and template, and a session's own status (closing it to new bookings, reopening it, cancelling it)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from core.errors import bad_input
from core.files import FileUpload
from core.ids import decode_id, decode_optional_id
from resolvers import appointment as appointments
from resolvers.data.context import Info
from schema.appointment import ScheduleType


class PlanFormat(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


class PlanLanguage(StrEnum):
    BOTH = "both"
    ZH = "zh"
    EN = "en"


PlanFormatEnum = strawberry.enum(PlanFormat, name="SchedulePlanFormat", description="The file type of a plan.")
PlanLanguageEnum = strawberry.enum(PlanLanguage, name="SchedulePlanLanguage", description="The header row's language.")


@strawberry.type(name="CancelledSchedule", description="A cancelled session and what it did to its bookings.")
class CancelledScheduleType:
    schedule: ScheduleType = strawberry.field(description="The session, now cancelled.")
    cancelled_appointments: int = strawberry.field(description="Appointments cancelled with it.")
    notified_patients: int = strawberry.field(description="Patients told in their consultation.")


@strawberry.type(name="ScheduleImportProblem", description="Why one row (or the file) cannot be imported.")
class ImportProblemType:
    row: int = strawberry.field(description="The row's number in the file (1 is the header).")
    column: str | None = strawberry.field(description="The column, by its English header; none for the whole row.")
    message: str = strawberry.field(description="What is wrong.")


@strawberry.type(name="ScheduleImportReport", description="What an import did, or would do (dryRun), row by row.")
class ImportReportType:
    dry_run: bool = strawberry.field(description="Nothing was written on purpose.")
    written: bool = strawberry.field(description="The plan was written (no problem, not a dry run).")
    rows: int = strawberry.field(description="Rows read (blank lines skipped).")
    created: int = strawberry.field(description="Sessions made (or to make).")
    updated: int = strawberry.field(description="Sessions changed (or to change).")
    unchanged: int = strawberry.field(description="Rows already as the plan says.")
    problem_count: int = strawberry.field(description="Problems found; any problem writes nothing.")
    problems: list[ImportProblemType] = strawberry.field(description="The first 1,000 problems, by row.")


@strawberry.type(name="ScheduleFile", description="A schedule plan file (export or template).")
class ScheduleFileType:
    filename: str = strawberry.field(description="A name to save it under.")
    content_type: str = strawberry.field(description="Its media type.")
    content_base64: str = strawberry.field(description="The file, base64.")
    rows: int = strawberry.field(description="Rows under the header.")

    @classmethod
    def of(cls, plan: appointments.PlanFile) -> ScheduleFileType:
        return cls(filename=plan.filename, content_type=plan.content_type, content_base64=plan.base64, rows=plan.rows)


@strawberry.input(description="Which sessions to export.")
class ScheduleExportFilter:
    department_id: strawberry.ID | None = strawberry.field(default=None, description="One department's.")
    physician_id: strawberry.ID | None = strawberry.field(default=None, description="One physician's.")
    from_: date | None = strawberry.field(default=None, name="from", description="From this day.")
    to: date | None = strawberry.field(default=None, description="Up to this day.")


def _id(kind: str, value: strawberry.ID) -> int:
    return decode_id(kind, value)


@strawberry.type
class ScheduleQuery:
    @strawberry.field(description="Sessions you manage as a schedule plan file: imported back, it changes nothing.")
    async def export_schedules(
        self,
        info: Info,
        filter: Annotated[ScheduleExportFilter | None, strawberry.argument(description="Which sessions.")] = None,
        format: Annotated[PlanFormatEnum, strawberry.argument(description="XLSX or CSV.")] = PlanFormat.XLSX,  # type: ignore[valid-type]
        language: Annotated[PlanLanguageEnum, strawberry.argument(description="Header language.")] = PlanLanguage.BOTH,  # type: ignore[valid-type]
    ) -> ScheduleFileType:
        given = filter or ScheduleExportFilter()
        filters = appointments.ScheduleFilter(
            department_id=decode_optional_id("Department", given.department_id),
            physician_id=decode_optional_id("User", given.physician_id),
            since=given.from_,
            until=given.to,
        )
        plan = await appointments.export_schedules(
            info.context, filters, PlanFormat(format).value, PlanLanguage(language).value
        )
        return ScheduleFileType.of(plan)

    @strawberry.field(description="An empty schedule plan with its columns (Chinese and English) and two examples.")
    def schedule_import_template(
        self,
        info: Info,
        format: Annotated[PlanFormatEnum, strawberry.argument(description="XLSX or CSV.")] = PlanFormat.XLSX,  # type: ignore[valid-type]
        language: Annotated[PlanLanguageEnum, strawberry.argument(description="Header language.")] = PlanLanguage.BOTH,  # type: ignore[valid-type]
    ) -> ScheduleFileType:
        plan = appointments.template(PlanFormat(format).value, PlanLanguage(language).value, info.context.today())
        return ScheduleFileType.of(plan)


@strawberry.type
class ScheduleMutation:
    @strawberry.mutation(
        description="Import a schedule plan (XLSX or CSV, as a GraphQL multipart upload with an Authorization "
        "header): every row is checked; any problem writes nothing; importing the same plan again changes nothing."
    )
    async def import_schedules(
        self,
        info: Info,
        file: Annotated[Upload, strawberry.argument(description="The plan file (see scheduleImportTemplate).")],
        dry_run: Annotated[bool, strawberry.argument(description="Check and report only.")] = False,
    ) -> ImportReportType:
        if not isinstance(file, FileUpload):
            raise bad_input("Send the file as a multipart upload", "file")
        report = await appointments.import_schedules(info.context, file, dry_run=dry_run)
        return ImportReportType(
            dry_run=report.dry_run,
            written=report.written,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            problem_count=report.problem_count,
            problems=[ImportProblemType(row=p.row, column=p.column, message=p.message) for p in report.problems],
        )

    @strawberry.mutation(description="Cancel a session; with bookings a reason is required and each patient is told.")
    async def cancel_schedule(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The session.")],
        reason: Annotated[str | None, strawberry.argument(description="Why (told to the booked patients).")] = None,
    ) -> CancelledScheduleType:
        done = await appointments.cancel_schedule(info.context, _id("Schedule", id), reason)
        return CancelledScheduleType(
            schedule=ScheduleType.from_row(done.schedule),
            cancelled_appointments=done.appointments,
            notified_patients=done.notified,
        )

    @strawberry.mutation(
        description="Close an open session to new bookings (booking it is then a CONFLICT); its appointments stand."
    )
    async def close_schedule(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The session.")],
        reason: Annotated[str | None, strawberry.argument(description="Why (kept in the audit log).")] = None,
    ) -> ScheduleType:
        row = await appointments.set_open(info.context, _id("Schedule", id), open_=False, reason=reason)
        return ScheduleType.from_row(row)

    @strawberry.mutation(description="Reopen a closed session to new bookings.")
    async def reopen_schedule(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The session.")]
    ) -> ScheduleType:
        return ScheduleType.from_row(await appointments.set_open(info.context, _id("Schedule", id), open_=True))
