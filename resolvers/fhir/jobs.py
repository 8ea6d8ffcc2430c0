"""The `fhir.export` job target: bulk exports run on the platform scheduler (resolvers/operations/).

Each run takes the exports waiting or interrupted, oldest first, and runs each to its end as its requester
(resolvers/fhir/runner.py), resuming after its last saved step. The job's runs never overlap (a system job), so an
export is worked on by one run on one instance at a time; a run whose instance died is failed as stale by the
scheduler, and the next firing resumes its export. A kick-off starts the job at once (`Scheduler.run_target_now`);
the minute's firing picks up anything a running run missed. Finished exports' files are deleted once past
FHIR_EXPORT_KEEP_HOURS.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.timeutil import utcnow
from models.fhir import ExportStatus, FhirExport
from models.operations import MisfirePolicy
from resolvers.data.context import Context
from resolvers.fhir.runner import LIVE, Stopped, export_dir, refusal_message, remove_files, run_export
from resolvers.operations.runs import RunContext
from resolvers.operations.targets import target

TARGET = "fhir.export"
log = logging.getLogger("followup.fhir")


class _Gone(Exception):
    """The export is no longer live: leave the unit without writing."""


async def save_progress(ctx: Context, export: FhirExport, **values: Any) -> bool:
    """Store an export's progress as its requester (an audited write); False when it was cancelled meanwhile."""
    try:
        async with ctx.data.write(operation="fhirBulkExportStep", action="update", entity_type="FhirExport") as unit:
            statement = await ctx.data.update(FhirExport)
            changed = await unit.execute(
                statement.where(FhirExport.id == export.id, FhirExport.status.in_(LIVE)).values(
                    updated_at=utcnow(), **values
                )
            )
            if not changed:
                raise _Gone
            unit.entity_id = export.id
            unit.detail = {key: values[key] for key in ("status", "done_patients", "total_patients") if key in values}
    except _Gone:
        return False
    return True


async def fail(ctx: Context, export_id: str, message: str) -> None:
    system = ctx.data.unscoped("the export job records why an export failed")
    async with ctx.data.write(operation="fhirBulkExportFailed", action="update", entity_type="FhirExport") as unit:
        await unit.execute(
            system.update(FhirExport)
            .where(FhirExport.id == export_id, FhirExport.status.in_(LIVE))
            .values(status=ExportStatus.FAILED.value, message=message[:500], finished_at=utcnow(), updated_at=utcnow())
        )
        unit.entity_id = export_id
        unit.detail = {"status": ExportStatus.FAILED.value}


async def purge_expired(ctx: Context) -> int:
    """Delete the files of exports past their keeping time (their rows stay, marked expired)."""
    system = ctx.data.unscoped("the export job deletes the files of expired exports, whoever asked for them")
    ids = await ctx.data.scalars(
        system.select(FhirExport.id).where(
            FhirExport.status == ExportStatus.COMPLETED.value,
            FhirExport.expires_at < utcnow(),  # type: ignore[operator]
        )
    )
    for export_id in ids:
        await asyncio.to_thread(remove_files, export_dir(ctx.services, export_id))
        async with ctx.data.write(operation="fhirBulkExportExpired", action="delete", entity_type="FhirExport") as unit:
            await unit.execute(
                system.update(FhirExport)
                .where(FhirExport.id == export_id)
                .values(status=ExportStatus.EXPIRED.value, updated_at=utcnow())
            )
            unit.entity_id = export_id
    return len(ids)


async def _next(ctx: Context, tried: set[str]) -> FhirExport | None:
    system = ctx.data.unscoped("the export job picks up every waiting export (each then runs as its requester)")
    statement = system.select(FhirExport).where(FhirExport.status.in_(LIVE), FhirExport.session_id != "")
    if tried:
        statement = statement.where(FhirExport.id.not_in(sorted(tried)))
    return await ctx.data.first(statement.order_by(FhirExport.created_at, FhirExport.id))  # type: ignore[no-any-return]


@target(
    TARGET,
    "Run the FHIR bulk data exports waiting or interrupted, each as its requester (data scope, masking, audit), "
    "resuming each after its last saved step; delete the files of exports past FHIR_EXPORT_KEEP_HOURS.",
    system_cron="* * * * *",
    system_misfire=MisfirePolicy.RUN_ONCE,
)
async def run_exports(run: RunContext) -> int:
    ctx = run.ctx
    await purge_expired(ctx)
    exported = 0
    tried: set[str] = set()
    while (export := await _next(ctx, tried)) is not None:
        tried.add(export.id)
        try:
            exported += await run_export(ctx.services, export, save=save_progress)
        except Stopped:  # cancelled meanwhile: its files go (the cancel deleted what was there then)
            await asyncio.to_thread(remove_files, export_dir(ctx.services, export.id))
        except asyncio.CancelledError:  # the instance stops: the export stays live, the next run resumes it
            raise
        except Exception as error:
            log.warning("FHIR export %s failed (%s)", export.id, type(error).__name__)
            await fail(ctx, export.id, refusal_message(error))
    return exported
