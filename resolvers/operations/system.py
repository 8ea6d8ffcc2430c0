"""The platform's own jobs: registered targets with a schedule (system jobs: paused, never deleted).

Each does its writes through write units of the platform's context (no account: events with no actor), so
marking a follow-up missed is audited like any status change, with its amendment history.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_

from core.timeutil import utcnow
from models.auth import AuthSession, RefreshToken
from models.clinical import FollowUp, FollowUpStatus
from models.operations import JobRun, MisfirePolicy, RequestMinute, RunStatus
from models.patient import PatientBindingCode
from models.upload import Upload
from resolvers.audit import history
from resolvers.data.context import Context
from resolvers.data.sealing import AuditChainError, archive_before, seal_unsealed
from resolvers.operations.runs import RunContext, Skip
from resolvers.operations.targets import Param, target

_CHUNK = 500


class _Changed(Exception):
    """The row changed since it was picked (a physician recorded the outcome): leave it."""


# ---- follow-ups --------------------------------------------------------------------------------


@target(
    "followups.mark_missed",
    "Mark scheduled follow-ups missed once their window has passed: due more than afterDays ago (clinic time "
    "zone; FOLLOW_UP_MISSED_AFTER_DAYS when not given) and not answered by the patient. Each is audited, with its "
    "history.",
    Param("afterDays", "int", "days after the due date (default: FOLLOW_UP_MISSED_AFTER_DAYS)", None, False, 0, 365),
    Param("batchSize", "int", "at most this many per run (the next run goes on)", 500, False, 1, 5000),
    system_cron="15 1 * * *",
)
async def mark_missed_follow_ups(run: RunContext) -> int:
    ctx = run.ctx
    after_days = run.args.get("afterDays")
    window = ctx.settings.follow_up_missed_after_days if after_days is None else int(after_days)
    cutoff = ctx.today() - timedelta(days=window)
    system = ctx.data.unscoped("the platform marks follow-ups whose window has passed, whoever attends them")
    candidates = await ctx.data.scalars(
        system.select(FollowUp.id)
        .where(*_still_open(), FollowUp.due_date < cutoff)
        .order_by(FollowUp.id)
        .limit(int(run.args["batchSize"]))
    )
    marked = 0
    for follow_up_id in candidates:
        try:
            await _mark_missed(ctx, follow_up_id, cutoff, window)
        except _Changed:
            continue
        marked += 1
    return marked


def _still_open() -> list[Any]:
    return [
        FollowUp.status == FollowUpStatus.SCHEDULED.value,
        FollowUp.voided_at.is_(None),
        FollowUp.response_at.is_(None),  # the patient answered: a physician confirms it, it is not missed
    ]


async def _mark_missed(ctx: Context, follow_up_id: int, cutoff: Any, window: int) -> None:
    system = ctx.data.unscoped("the platform marks a follow-up whose window has passed")
    async with ctx.data.write(operation="markFollowUpMissed", action="update", entity_type="FollowUp") as unit:
        row = await unit.first(system.select(FollowUp).where(FollowUp.id == follow_up_id, *_still_open()))
        if row is None or row.due_date >= cutoff:
            raise _Changed
        before = history.snapshot(row)
        unit.detach(row)
        now = utcnow()
        changed = await unit.execute(
            system.update(FollowUp)
            .where(FollowUp.id == follow_up_id, FollowUp.version == row.version, *_still_open())
            .values(status=FollowUpStatus.MISSED.value, recorded_at=now, version=row.version + 1)
        )
        if not changed:
            raise _Changed
        row.status, row.recorded_at, row.version = FollowUpStatus.MISSED.value, now, row.version + 1
        reason = f"not done within {window} days of its due date (marked by the platform)"
        history.record_updated(ctx, unit, row, "FollowUp", before, reason)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = row.patient_id
        unit.detail = {"status": FollowUpStatus.MISSED.value, "automatic": True, "windowDays": window}


# ---- sessions, refresh tokens, binding codes ---------------------------------------------------


@target(
    "sessions.purge_expired",
    "Delete sessions (with their refresh tokens) that ended more than keepDays ago (expired, revoked or idle) and "
    "patient binding codes that expired more than keepDays ago.",
    Param("keepDays", "int", "keep ended ones this many days (for the record)", 30, False, 0, 3650),
    system_cron="0 3 * * *",
)
async def purge_expired_sessions(run: RunContext) -> int:
    ctx = run.ctx
    cutoff = utcnow() - timedelta(days=int(run.args["keepDays"]))
    idle = timedelta(minutes=ctx.settings.session_idle_minutes)
    system = ctx.data.unscoped("the platform purges ended sessions and expired codes")
    ended = or_(
        AuthSession.expires_at < cutoff,
        AuthSession.revoked_at < cutoff,  # type: ignore[operator]
        AuthSession.last_seen_at < cutoff - idle,
    )
    removed = 0
    while True:
        ids = await ctx.data.scalars(system.select(AuthSession.id).where(ended).order_by(AuthSession.id).limit(_CHUNK))
        if not ids:
            break
        async with ctx.data.write(operation="purgeSessions", action="delete", entity_type="Session") as unit:
            tokens = await unit.execute(system.delete(RefreshToken).where(RefreshToken.session_id.in_(ids)))
            sessions = await unit.execute(system.delete(AuthSession).where(AuthSession.id.in_(ids), ended))
            unit.detail = {"sessions": sessions, "refreshTokens": tokens}
        removed += sessions + tokens
        if len(ids) < _CHUNK:
            break
    async with ctx.data.write(operation="purgeBindingCodes", action="delete", entity_type="PatientBindingCode") as unit:
        codes = await unit.execute(system.delete(PatientBindingCode).where(PatientBindingCode.expires_at < cutoff))
        unit.detail = {"bindingCodes": codes}
    return removed + codes


# ---- uploads ------------------------------------------------------------------------------------


def _upload_references() -> list[Any]:
    """Every column that refers to an upload, read off the tables' foreign keys (a new module's included)."""
    from sqlmodel import SQLModel

    upload = Upload.__table__  # type: ignore[attr-defined]
    return [
        column
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if any(key.column.table is upload for key in column.foreign_keys)
    ]


@target(
    "uploads.purge_unattached",
    "Delete uploads that nothing refers to (no message or other record shows them) once older than keepHours: "
    "what was uploaded and never attached does not stay, nor count against its owner's quota.",
    Param("keepHours", "int", "keep an unattached upload this many hours (time to attach it)", 24, False, 1, 24 * 90),
    system_cron="40 3 * * *",
)
async def purge_unattached_uploads(run: RunContext) -> int:
    ctx = run.ctx
    cutoff = utcnow() - timedelta(hours=int(run.args["keepHours"]))
    system = ctx.data.unscoped("the platform removes uploads nothing refers to, whoever made them")
    unattached = [Upload.created_at < cutoff] + [
        ~exists().where(column == Upload.id) for column in _upload_references()
    ]
    removed = 0
    while True:
        ids = await ctx.data.scalars(system.select(Upload.id).where(*unattached).order_by(Upload.id).limit(_CHUNK))
        if not ids:
            break
        async with ctx.data.write(operation="purgeUploads", action="delete", entity_type="Upload") as unit:
            # checked again in the delete: one attached meanwhile stays
            deleted = await unit.execute(system.delete(Upload).where(Upload.id.in_(ids), *unattached))
            unit.detail = {"uploads": deleted}
        removed += deleted
        if len(ids) < _CHUNK:
            break
    return removed


# ---- the audit chain ---------------------------------------------------------------------------


@target(
    "audit.seal_pending",
    "Link into the audit chain the events no write has sealed yet (the events of reads).",
    Param(
        "batchSize",
        "int",
        "events per locked step (0: the database's own, SQLite 200, MariaDB 500)",
        0,
        False,
        0,
        100_000,
    ),
    system_cron="*/10 * * * *",
    system_misfire=MisfirePolicy.SKIP,
)
async def seal_pending_events(run: RunContext) -> int:
    return await seal_unsealed(run.ctx, batch_size=int(run.args["batchSize"]) or None)


@target(
    "audit.archive",
    "When AUDIT_ARCHIVE_ENABLED: move audit events older than AUDIT_ARCHIVE_AFTER_DAYS (from midnight, clinic time "
    "zone) to a JSON Lines file in AUDIT_ARCHIVE_DIR, with their hashes; the chain verifies from the cut.",
    system_cron="30 2 * * *",
)
async def archive_audit_events(run: RunContext) -> int:
    settings = run.ctx.settings
    if not settings.audit_archive_enabled:
        raise Skip("switched off (AUDIT_ARCHIVE_ENABLED=false)")
    day = run.ctx.today() - timedelta(days=settings.audit_archive_after_days)
    before = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(settings.clinic_tz))
    folder = Path(settings.audit_archive_dir)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    out = folder / f"audit-before-{day.isoformat()}-run{run.run_id}.jsonl"
    try:
        return await archive_before(run.ctx, before=before, out=out)
    except AuditChainError as error:
        raise RuntimeError(f"archive refused: {error}") from None


# ---- the module's own history ------------------------------------------------------------------


@target(
    "operations.purge_history",
    "Delete finished job runs and per-minute request figures older than keepDays (each job's execution count stays).",
    Param("keepDays", "int", "keep this many days", 90, False, 1, 3650),
    system_cron="45 3 * * *",
)
async def purge_operations_history(run: RunContext) -> int:
    ctx = run.ctx
    cutoff = utcnow() - timedelta(days=int(run.args["keepDays"]))
    system = ctx.data.unscoped("the platform purges its own old figures")
    async with ctx.data.write(operation="purgeOperationsHistory", action="delete", entity_type="JobRun") as unit:
        runs = await unit.execute(
            system.delete(JobRun).where(JobRun.status != RunStatus.RUNNING.value, JobRun.started_at < cutoff)
        )
        minutes = await unit.execute(system.delete(RequestMinute).where(RequestMinute.minute < cutoff))
        unit.detail = {"jobRuns": runs, "requestMinutes": minutes}
    return runs + minutes
