"""FHIR bulk data exports, as a caller asks for them: kick-off, status and manifest, files, cancellation.

Following the FHIR Bulk Data Access pattern (the HTTP side is schema/engine/fhir.py). A kick-off is a write unit
(audited, refusals too) that checks the capability (`fhir.export` for a department's group, `fhir.export_all` for
every patient in reach), the department (in reach: NOT_FOUND when missing, FORBIDDEN when outside the caller's
reach), `_type` and `_since`; the job then runs it (resolvers/fhir/jobs.py). An export, its status and its files are
its requester's only: anyone else gets NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.errors import AppError, ErrorCode, bad_input, forbidden, not_found
from core.timeutil import as_utc, utcnow
from models.fhir import ExportLevel, ExportStatus, FhirExport
from models.organisation import Department
from policies.capabilities import Capability
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.fhir.jobs import TARGET
from resolvers.fhir.registry import resource_types
from resolvers.fhir.runner import ERRORS, LIVE, export_dir, file_name, parse_file_name, parts_of, remove_files

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")


@dataclass(frozen=True)
class ExportRequest:
    level: ExportLevel
    department_id: int | None
    types: str | None  # _type as sent
    since: str | None  # _since as sent
    output_format: str | None
    request_url: str


def parse_types(raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return []
    known = resource_types()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise bad_input(f"_type names resource types this server does not export: {', '.join(unknown[:5])}", "_type")
    return list(dict.fromkeys(names))


def parse_since(raw: str | None) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_input("_since must be a FHIR instant (2026-01-31T08:00:00Z)", "_since") from None
    if moment.tzinfo is None:
        raise bad_input("_since must carry its time zone (2026-01-31T08:00:00+08:00)", "_since")
    if as_utc(moment) > utcnow():
        raise bad_input("_since is in the future", "_since")
    return as_utc(moment)


async def kick_off(ctx: Context, request: ExportRequest, *, command_line: bool = False) -> FhirExport:
    """Queue an export and start the job on it; the new export. From the operator's command line (which then runs
    it in the foreground) the export belongs to no session, and the job leaves it alone."""
    principal = ctx.principal
    async with ctx.data.write(operation="fhirBulkExport", action="create", entity_type="FhirExport") as unit:
        access = await ctx.access()
        needed = Capability.FHIR_EXPORT if request.level is ExportLevel.GROUP else Capability.FHIR_EXPORT_ALL
        session_id = "" if command_line else principal.session_id
        if principal.user_id is None or session_id is None or not access.can(needed):
            raise forbidden("Your role may not export FHIR bulk data at this level")
        if request.output_format is not None and request.output_format not in OUTPUT_FORMATS:
            raise bad_input("_outputFormat: only application/fhir+ndjson", "_outputFormat")
        types = parse_types(request.types)
        since = parse_since(request.since)
        if request.department_id is not None:
            if await unit.find(Department, request.department_id) is None:  # reference data: everyone's
                raise not_found("Department")
            if not access.reaches_group(request.department_id):
                raise forbidden("That department is outside your data scope")
        now = utcnow()
        export = FhirExport(
            id=secrets.token_hex(16),
            requested_by_id=principal.user_id,
            session_id=session_id,
            ip=ctx.ip[:64],
            level=request.level.value,
            department_id=request.department_id,
            types=",".join(types),
            since=since,
            request_url=request.request_url,
            transaction_time=now,
            outputs={},
            created_at=now,
            updated_at=now,
        )
        unit.add(export)
        unit.entity_id = export.id
        unit.detail = {"level": export.level, "departmentId": export.department_id, "types": types}
    scheduler = ctx.services.scheduler
    if scheduler is not None and not command_line:
        await scheduler.run_target_now(ctx, TARGET)
    return export


async def my_export(ctx: Context, export_id: str) -> FhirExport:
    """The caller's own export, still to be asked about (not cancelled, files not expired); else NOT_FOUND."""
    statement = await ctx.data.select(FhirExport, then=lambda s: s.where(FhirExport.id == export_id))
    export = await ctx.data.first(statement)
    if export is None or export.status in (ExportStatus.CANCELLED.value, ExportStatus.EXPIRED.value):
        raise not_found("Export")
    return export  # type: ignore[no-any-return]


async def my_exports(ctx: Context, *, first: int | None, after: str | None) -> Page[FhirExport]:
    """The caller's own exports, newest first, but for those they cancelled (whose status URL answers NOT_FOUND)."""
    statement = await ctx.data.select(
        FhirExport, then=lambda s: s.where(FhirExport.status != ExportStatus.CANCELLED.value)
    )
    return await ctx.data.page(
        statement,
        keys=[FhirExport.created_at, FhirExport.id],
        key_of=lambda row: [row.created_at, row.id],
        first=first,
        after=after,
        descending=True,
    )


def kick_off_url(department_id: int | None, types: str | None, since: str | None) -> str:
    """The kick-off URL an export asked for through the API (not over HTTP) stands for, relative to the server:
    what its manifest's `request` names. `types` and `since` as the kick-off's `_type` and `_since` would be sent."""
    path = "/fhir/Patient/$export" if department_id is None else f"/fhir/Group/{department_id}/$export"
    query = urlencode({key: value for key, value in (("_type", types), ("_since", since)) if value})
    return f"{path}?{query}" if query else path


def progress(export: FhirExport) -> str:
    total = max(export.total_patients, export.done_patients)
    if export.status == ExportStatus.ACCEPTED.value or total == 0:
        return "queued" if export.status == ExportStatus.ACCEPTED.value else "counting patients"
    return f"{100 * export.done_patients // total}% ({export.done_patients} of {total} patients)"


def manifest(export: FhirExport, files_url: str) -> dict[str, Any]:
    """The completion manifest (Bulk Data Access): the files of each resource type that has resources (several for
    a type past FHIR_EXPORT_FILE_MAX_RESOURCES), each with its count."""
    outputs = export.outputs or {}
    order = [name for name in resource_types() if name in outputs] + sorted(set(outputs) - set(resource_types()))

    def files_of(name: str) -> list[dict[str, Any]]:
        return [
            {"type": name, "url": f"{files_url}/{file_name(name, number)}", "count": part["count"]}
            for number, part in enumerate(parts_of(outputs[name]), start=1)
            if part["count"]
        ]

    files = [entry for name in order if name != ERRORS for entry in files_of(name)]
    errors = [{"type": ERRORS, "url": entry["url"]} for entry in files_of(ERRORS)] if ERRORS in outputs else []
    return {
        "transactionTime": export.transaction_time.isoformat(),
        "request": export.request_url,
        "requiresAccessToken": True,
        "output": files,
        "error": errors,
    }


async def export_file(ctx: Context, export_id: str, name: str) -> Path:
    """One NDJSON file of the caller's completed export; each download is recorded."""
    async with ctx.data.write(operation="fhirBulkExportFile", action="read", entity_type="FhirExport") as unit:
        export = await my_export(ctx, export_id)
        if export.status != ExportStatus.COMPLETED.value:
            raise AppError(ErrorCode.CONFLICT, "The export has not finished")
        named = parse_file_name(name)
        entry = (export.outputs or {}).get(named[0]) if named else None
        if named is None or entry is None or named[1] > len(parts_of(entry)):
            raise not_found("Export file")
        resource_type, part = named
        unit.entity_id = export.id
        unit.detail = {"file": file_name(resource_type, part), "count": parts_of(entry)[part - 1]["count"]}
    return export_dir(ctx.services, export.id) / file_name(resource_type, part)


async def cancel(ctx: Context, export_id: str) -> None:
    """DELETE of the status URL: a live export stops at its next step, a finished one's files go; the status URL
    then answers NOT_FOUND."""
    async with ctx.data.write(operation="fhirBulkExportCancel", action="delete", entity_type="FhirExport") as unit:
        export = await my_export(ctx, export_id)
        statement = await ctx.data.update(FhirExport)
        await unit.execute(
            statement.where(FhirExport.id == export.id).values(
                status=ExportStatus.CANCELLED.value, updated_at=utcnow(), finished_at=utcnow()
            )
        )
        unit.entity_id = export.id
        unit.detail = {"was": export.status, "live": export.status in LIVE}
    await asyncio.to_thread(remove_files, export_dir(ctx.services, export_id))
