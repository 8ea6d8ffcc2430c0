"""Running a FHIR bulk export: its patients in id order, a step of FHIR_EXPORT_BATCH patients at a time, each step
an audited read of those patients, its resources appended to the NDJSON files of their resource type (a new file once
one holds FHIR_EXPORT_FILE_MAX_RESOURCES: `Patient.ndjson`, `Patient.2.ndjson`, ...), then the progress saved
(cursor, counts, file sizes). A run that stopped (a restart, a crash) resumes after the last saved step: its files
are first cut back to the saved sizes, so nothing is written twice. A resource several patients share (a physician's
session: the registry's `shared` types) is written once, the first time a step meets it; a resumed run learns which
were written from the files themselves.

The export reads as its requester, through their scoped repository and field decision (the same data scope,
masking and audit as the API); their principal is read again at every run from their session, so a revoked session
or a disabled account stops it, and a changed role or policy applies from the next step. Memory stays flat: one step
of patients is in memory at a time, and each step starts a fresh request context (nothing cached across steps).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from sqlalchemy import func

from core.errors import AppError
from core.timeutil import utcnow
from models.fhir import ExportLevel, ExportStatus, FhirExport
from models.patient import Patient
from policies.access import Principal
from policies.scope import subtree
from policies.voided import voided_hidden
from resolvers.data.context import Context
from resolvers.data.principal import principal_of_account, principal_of_session
from resolvers.data.tree import department_parents
from resolvers.fhir.build import resources_of
from resolvers.fhir.registry import shared_types

if TYPE_CHECKING:
    from resolvers.data.context import Services

ERRORS = "OperationOutcome"  # the errors file: one OperationOutcome per resource that failed validation
LIVE = (ExportStatus.ACCEPTED.value, ExportStatus.RUNNING.value)
Progress = Callable[[int, int], None]  # (patients done, patients in all)


class Stopped(Exception):
    """The export was cancelled (or finished elsewhere) while this run worked on it."""


def export_dir(services: Services, export_id: str) -> Path:
    return Path(services.settings.fhir_export_dir) / export_id


def file_name(resource_type: str, part: int = 1) -> str:
    """A type's `part`-th NDJSON file (1: `Patient.ndjson`, 2: `Patient.2.ndjson`)."""
    return f"{resource_type}.ndjson" if part == 1 else f"{resource_type}.{part}.ndjson"


def parse_file_name(name: str) -> tuple[str, int] | None:
    """(resource type, part) of a file name `file_name` made; None for any other name."""
    stem = name.removesuffix(".ndjson")
    if stem == name or not stem:
        return None
    kind, _, number = stem.partition(".")
    if not number:
        return kind, 1
    return (kind, int(number)) if number.isdigit() and int(number) >= 2 and str(int(number)) == number else None


def parts_of(entry: dict[str, Any]) -> list[dict[str, int]]:
    """A type's files as saved: [{"count", "bytes"}] per part (an export saved before files were split: one)."""
    parts = entry.get("parts")
    return [dict(part) for part in parts] if parts else [{"count": entry["count"], "bytes": entry["bytes"]}]


@dataclass
class Step:
    """One step's output, by resource type: the NDJSON lines and how many."""

    lines: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, resource_type: str, resource: dict[str, Any]) -> None:
        self.lines.setdefault(resource_type, []).append(orjson.dumps(resource) + b"\n")


async def principal_for(services: Services, export: FhirExport) -> Principal:
    if export.session_id:
        return await principal_of_session(services, session_id=export.session_id, user_id=export.requested_by_id)
    return await principal_of_account(services, user_id=export.requested_by_id)  # the operator's command line


def _context(services: Services, principal: Principal, export: FhirExport) -> Context:
    return Context(
        services=services,
        principal=principal,
        ip=export.ip,
        user_agent="fhir-bulk-export",
        request_id=f"fhir-export-{export.id}",
    )


async def _patient_clause(ctx: Context, export: FhirExport) -> list[Any]:
    access = await ctx.access()
    clauses: list[Any] = list(voided_hidden(Patient, access))
    if export.level == ExportLevel.GROUP.value and export.department_id is not None:
        departments = subtree(export.department_id, await department_parents(ctx))
        clauses.append(Patient.department_id.in_(sorted(departments)))
    return clauses


async def count_patients(ctx: Context, export: FhirExport) -> int:
    clauses = await _patient_clause(ctx, export)
    statement = await ctx.data.select(Patient, func.count(Patient.id), then=lambda s: s.where(*clauses))
    return int(await ctx.data.scalar(statement) or 0)


async def _next_patients(ctx: Context, export: FhirExport, cursor: int, limit: int) -> list[Any]:
    clauses = await _patient_clause(ctx, export)
    after = Patient.id > cursor  # type: ignore[operator]
    statement = await ctx.data.select(
        Patient, columns=True, then=lambda s: s.where(after, *clauses).order_by(Patient.id).limit(limit)
    )
    return ctx.data.rows_as(Patient, None, await ctx.data.rows(statement))


def _wanted(export: FhirExport) -> tuple[set[str] | None, datetime | None]:
    types = {name for name in export.types.split(",") if name} or None
    return types, export.since


def _validator(services: Services) -> Callable[[dict[str, Any]], str | None] | None:
    if not services.settings.fhir_export_validate:
        return None
    from fhir.resources.R4B import get_fhir_model_class

    def problem(resource: dict[str, Any]) -> str | None:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValidationError as error:  # where and why, never the values (the file goes out of the house)
            faults = "; ".join(
                f"{'.'.join(str(part) for part in fault['loc'])}: {fault['msg']}"
                for fault in error.errors(include_url=False, include_input=False)
            )
            return f"{resource['resourceType']}/{resource['id']} does not validate: {faults}"[:1000]
        return None

    return problem


def _step(
    resources: dict[int, list[dict[str, Any]]],
    export: FhirExport,
    problem: Callable[[dict[str, Any]], str | None] | None,
    written: set[str],
) -> Step:
    """A step's lines; `written` holds the shared resources written so far (added to as they are)."""
    types, since = _wanted(export)
    since_text = since.isoformat() if since is not None else None
    shared = shared_types()
    step = Step()
    for patient_resources in resources.values():
        for resource in patient_resources:
            kind = resource["resourceType"]
            if types is not None and kind not in types:
                continue
            if kind in shared:
                key = f"{kind}/{resource['id']}"
                if key in written:
                    continue
                written.add(key)
            if since_text is not None:
                updated = resource.get("meta", {}).get("lastUpdated")
                if updated is None or _instant(updated) < since:  # type: ignore[operator]
                    continue
            found = problem(resource) if problem is not None else None
            if found is not None:
                step.add(ERRORS, _outcome(found))
                continue
            step.add(kind, resource)
    return step


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _outcome(message: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": message}],
    }


def _append(folder: Path, step: Step, outputs: dict[str, Any], cap: int) -> dict[str, Any]:
    """Append a step's lines to their files, at most `cap` lines a file (in a thread: file writes block); the new
    counts and sizes, per file."""
    folder.mkdir(parents=True, exist_ok=True)
    updated = {name: dict(value) for name, value in outputs.items()}
    for resource_type, lines in step.lines.items():
        entry = updated.get(resource_type)
        parts = parts_of(entry) if entry else [{"count": 0, "bytes": 0}]
        pending = lines
        while pending:
            if parts[-1]["count"] >= cap:
                parts.append({"count": 0, "bytes": 0})
            room = cap - parts[-1]["count"]
            chunk, pending = pending[:room], pending[room:]
            with (folder / file_name(resource_type, len(parts))).open("ab") as out:
                out.writelines(chunk)
                out.flush()
                os.fsync(out.fileno())
                parts[-1] = {"count": parts[-1]["count"] + len(chunk), "bytes": out.tell()}
        updated[resource_type] = {
            "count": sum(part["count"] for part in parts),
            "bytes": sum(part["bytes"] for part in parts),
            "parts": parts,
        }
    return updated


def _cut_back(folder: Path, outputs: dict[str, Any]) -> None:
    """Resuming: each file back to its size at the last saved step; files of no saved step removed."""
    if not folder.exists():
        return
    for path in folder.glob("*.ndjson"):
        named = parse_file_name(path.name)
        entry = outputs.get(named[0]) if named else None
        parts = parts_of(entry) if entry else []
        if named is None or named[1] > len(parts):
            path.unlink()
            continue
        kept = parts[named[1] - 1]["bytes"]
        if path.stat().st_size != kept:
            with path.open("r+b") as out:
                out.truncate(kept)


def _written(folder: Path, outputs: dict[str, Any]) -> set[str]:
    """The shared resources already in an export's files (resuming: after `_cut_back`)."""
    found: set[str] = set()
    for kind in shared_types():
        entry = outputs.get(kind)
        for part in range(1, len(parts_of(entry)) + 1 if entry else 1):
            path = folder / file_name(kind, part)
            if path.exists():
                with path.open("rb") as lines:
                    found.update(f"{kind}/{orjson.loads(line)['id']}" for line in lines if line.strip())
    return found


def remove_files(folder: Path) -> None:
    if folder.exists():
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


async def run_export(
    services: Services, export: FhirExport, *, save: Any, folder: Path | None = None, progress: Progress | None = None
) -> int:
    """Run (or resume) one export to its end; the patients it exported in this run.

    `save(ctx, export, **values)` stores progress and returns False when the export is no longer live (cancelled):
    the job saves through its write units (resolvers/fhir/jobs.py), the command line the same way."""
    folder = folder or export_dir(services, export.id)
    principal = await principal_for(services, export)
    await asyncio.to_thread(_cut_back, folder, export.outputs or {})
    written = await asyncio.to_thread(_written, folder, export.outputs or {})
    cap = services.settings.fhir_export_file_max_resources
    problem = _validator(services)
    batch = services.settings.fhir_export_batch
    ctx = _context(services, principal, export)
    if export.status == ExportStatus.ACCEPTED.value or not export.total_patients:
        total = await count_patients(ctx, export)
        if not await save(ctx, export, status=ExportStatus.RUNNING.value, total_patients=total):
            raise Stopped
        export.total_patients = total
    exported = 0
    while True:
        ctx = _context(services, principal, export)  # per step: loaders and caches start empty
        patients = await _next_patients(ctx, export, export.cursor, batch)
        if not patients:
            break
        ids = [int(row.id) for row in patients]
        # An export is an audited read of every patient in it, as a page of the API is.
        await ctx.data.record_reads(ids, action="export", operation="fhirBulkExport")
        step = _step(await resources_of(ctx, patients), export, problem, written)
        outputs = await asyncio.to_thread(_append, folder, step, export.outputs or {}, cap)
        done = export.done_patients + len(ids)
        if not await save(ctx, export, cursor=ids[-1], done_patients=done, outputs=outputs):
            raise Stopped
        export.cursor, export.done_patients, export.outputs = ids[-1], done, outputs
        exported += len(ids)
        if progress is not None:
            progress(done, max(export.total_patients, done))
    now = utcnow()
    keep = timedelta(hours=services.settings.fhir_export_keep_hours)
    finished = {"status": ExportStatus.COMPLETED.value, "finished_at": now, "expires_at": now + keep}
    if not await save(ctx, export, **finished):
        raise Stopped
    return exported


def refusal_message(error: BaseException) -> str:
    if isinstance(error, AppError):
        return error.message
    return f"{type(error).__name__}"
