"""Job runs in the database: claimed once per (job, scheduled time), kept alive by heartbeats, finished, and
failed by whoever finds them stale. Every change to a run is a write unit of its own (audited).

The claim is a unique row (resolvers/data/claims.py), safe on SQLite, MariaDB and Galera alike: with several
instances firing the same job, one inserts the run and the others are told they lost. A job whose runs may not
overlap is taken by a conditional UPDATE of its `active_run_id` in the same transaction; a firing that finds it
taken is recorded as a skipped run. A run's instance marks it every JOB_HEARTBEAT_SECONDS; a run not marked for
JOB_STALE_SECONDS (its instance died or lost the database) is failed by the first instance whose sweep finds it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from core.errors import AppError, conflict, not_found
from core.timeutil import as_utc, utcnow
from models.operations import JobRun, MisfirePolicy, RunStatus, RunTrigger, ScheduledJob
from models.role import DataScope
from policies.access import Principal
from resolvers.data.claims import claim, lost_race
from resolvers.data.context import Context

if TYPE_CHECKING:
    from resolvers.data.context import Services

# The platform itself: no account, no roles; its statements are system work (`data.unscoped`).
SYSTEM = Principal(data_scope=DataScope.ALL, client="scheduler")
JOBS_CHANNEL = "jobs"  # a job was created, changed or deleted: every instance reloads its schedule


class _Undo(Exception):
    """Leave the unit without committing and without recording a refusal (nothing happened)."""


class Skip(Exception):
    """Raised by a target that has nothing to do on purpose (switched off): the run is recorded as skipped."""


def system_context(services: Services, what: str) -> Context:
    return Context(
        services=services,
        principal=SYSTEM,
        ip="scheduler",
        user_agent="scheduler",
        request_id=f"{what}-{uuid.uuid4().hex[:12]}",
    )


@dataclass
class RunContext:
    """What a target gets: the platform's context (its writes are its own units), its checked arguments."""

    ctx: Context
    job_id: int
    run_id: int
    scheduled_for: datetime
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claimed:
    run_id: int
    job_id: int
    name: str
    target: str
    args: dict[str, Any]
    scheduled_for: datetime
    status: RunStatus


def describe(error: BaseException) -> str:
    """What a failed run says: a message, never a stack trace, and never a database driver's text (it can hold
    the values of a statement)."""
    if isinstance(error, AppError):
        text = error.message
    elif isinstance(error, SQLAlchemyError):
        text = f"database error ({type(error).__name__})"
    else:
        text = f"{type(error).__name__}: {error}".strip()
    return " ".join(text.split())[:500]


async def claim_run(
    ctx: Context,
    *,
    job_id: int,
    scheduled_for: datetime,
    trigger: RunTrigger,
    instance: str,
    late_by: timedelta | None = None,
) -> Claimed | None:
    """Claim the firing for this instance; None when another instance has it (or the job is gone or paused).

    A manual run (runJobNow) is claimed with the caller's context: out of reach is NOT_FOUND, and a job whose
    previous run still runs is CONFLICT. A scheduled firing is the platform's, and such a firing is recorded
    as skipped, as is a late firing of a job whose misfire policy skips it."""
    manual = trigger is RunTrigger.MANUAL
    system = ctx.data.unscoped("claiming a job's firing: the platform's own work")
    operation = "runJobNow" if manual else "startJobRun"
    try:
        async with ctx.data.write(operation=operation, action="create", entity_type="JobRun") as unit:
            if manual:
                job = await unit.get(ScheduledJob, job_id, what="Job")
            else:
                job = await unit.first(system.select(ScheduledJob).where(ScheduledJob.id == job_id))
                if job is None or not job.enabled:
                    raise _Undo
            now = utcnow()
            values = {
                "job_id": job.id,
                "scheduled_for": scheduled_for,
                "trigger": trigger.value,
                "status": RunStatus.RUNNING.value,
                "instance": instance[:32],
                "started_at": now,
                "heartbeat_at": now,
                "rows_affected": 0,
                "requested_by_id": ctx.principal.user_id if manual else None,
            }
            run_id = await claim(unit, JobRun, values)
            if run_id is None:
                if manual:
                    raise conflict("This job was started at this very moment already")
                raise _Undo  # another instance claimed this firing
            status, message = RunStatus.RUNNING, None
            if late_by is not None and job.misfire_policy == MisfirePolicy.SKIP.value:
                status, message = RunStatus.SKIPPED, f"missed by {int(late_by.total_seconds())} s (misfire policy skip)"
            elif not job.allow_overlap:
                taken = await unit.execute(
                    system.update(ScheduledJob)
                    .where(ScheduledJob.id == job.id, ScheduledJob.active_run_id.is_(None))
                    .values(active_run_id=run_id)
                )
                if not taken:
                    if manual:
                        raise conflict("The job's previous run is still running (it does not allow overlapping runs)")
                    status, message = RunStatus.SKIPPED, "the previous run is still running"
            if status is RunStatus.RUNNING:
                await unit.execute(
                    system.update(ScheduledJob)
                    .where(ScheduledJob.id == job.id)
                    .values(run_count=ScheduledJob.run_count + 1)
                )
            else:
                await unit.execute(
                    system.update(JobRun)
                    .where(JobRun.id == run_id)
                    .values(status=status.value, finished_at=now, message=message)
                )
            unit.entity_id = str(run_id)
            unit.detail = {"job": job.name, "trigger": trigger.value, "status": status.value}
            return Claimed(
                run_id=run_id,
                job_id=job.id,
                name=job.name,
                target=job.target,
                args=dict(job.args or {}),
                scheduled_for=as_utc(scheduled_for),
                status=status,
            )
    except _Undo:
        return None
    except DBAPIError as error:
        if lost_race(error):  # Galera: the other node's claim certified first
            return None
        raise


async def heartbeat(ctx: Context, run_id: int) -> bool:
    """Mark the run alive; False when it is no longer running (a sweep failed it meanwhile)."""
    system = ctx.data.unscoped("a run's liveness mark")
    try:
        async with ctx.data.write(operation="jobRunHeartbeat", action="update", entity_type="JobRun") as unit:
            changed = await unit.execute(
                system.update(JobRun)
                .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=utcnow())
            )
            if not changed:
                raise _Undo
            unit.entity_id = str(run_id)
    except _Undo:
        return False
    return True


async def finish_run(
    ctx: Context, *, run_id: int, job_id: int, status: RunStatus, rows: int = 0, message: str | None = None
) -> bool:
    """Record the outcome; False when the run was failed as stale meanwhile (that verdict stays)."""
    system = ctx.data.unscoped("finishing a job run")
    try:
        async with ctx.data.write(operation="finishJobRun", action="update", entity_type="JobRun") as unit:
            changed = await unit.execute(
                system.update(JobRun)
                .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING.value)
                .values(status=status.value, finished_at=utcnow(), rows_affected=rows, message=message)
            )
            if not changed:
                raise _Undo
            await _release(unit, system, job_id, run_id)
            unit.entity_id = str(run_id)
            unit.detail = {"status": status.value, "rows": rows}
    except _Undo:
        return False
    return True


async def _release(unit: Any, system: Any, job_id: int, run_id: int) -> None:
    await unit.execute(
        system.update(ScheduledJob)
        .where(ScheduledJob.id == job_id, ScheduledJob.active_run_id == run_id)
        .values(active_run_id=None)
    )


async def fail_stale(ctx: Context, *, stale_after: timedelta, instance: str) -> int:
    """Fail every running run whose heartbeat is older than `stale_after` (its instance is gone); how many."""
    system = ctx.data.unscoped("failing runs whose instance stopped answering")
    cutoff = utcnow() - stale_after
    stale = await ctx.data.rows(
        system.select(JobRun.id, JobRun.job_id, JobRun.instance).where(
            JobRun.status == RunStatus.RUNNING.value, JobRun.heartbeat_at < cutoff
        )
    )
    failed = 0
    for run_id, job_id, owner in stale:
        message = f"instance {owner[:12]} stopped answering; marked failed by instance {instance[:12]}"
        try:
            async with ctx.data.write(operation="failStaleJobRun", action="update", entity_type="JobRun") as unit:
                changed = await unit.execute(
                    system.update(JobRun)
                    .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING.value, JobRun.heartbeat_at < cutoff)
                    .values(status=RunStatus.FAILED.value, finished_at=utcnow(), message=message)
                )
                if not changed:
                    raise _Undo  # it answered after all, or another sweep was first
                await _release(unit, system, job_id, run_id)
                unit.entity_id = str(run_id)
                unit.detail = {"stale": True, "instance": owner}
        except _Undo:
            continue
        except DBAPIError as error:
            if lost_race(error):  # another node's sweep failed it first
                continue
            raise
        failed += 1
    return failed


async def latest_claimed(ctx: Context, job_id: int) -> datetime | None:
    """The latest scheduled time any run of the job was claimed for."""
    system = ctx.data.unscoped("the scheduler's catch-up look-up")
    statement = system.select(JobRun.scheduled_for).where(JobRun.job_id == job_id)
    found = await ctx.data.scalar(statement.order_by(JobRun.scheduled_for.desc()).limit(1))
    return None if found is None else as_utc(found)


async def run_of(ctx: Context, run_id: int) -> JobRun:
    found = await ctx.data.first(await ctx.data.select(JobRun, then=lambda s: s.where(JobRun.id == run_id)))
    if found is None:
        raise not_found("Job run")
    return found  # type: ignore[no-any-return]


@dataclass(frozen=True)
class JobFigures:
    name: str
    enabled: bool
    executions: int
    runs_by_status: dict[str, int]
    last_success_at: datetime | None


async def job_figures(ctx: Context) -> list[JobFigures]:
    """Every job's executions and its kept runs by status, for /metrics (all instances: read from the table)."""
    system = ctx.data.unscoped("the platform's job figures for /metrics")
    jobs = await ctx.data.rows(
        system.select(ScheduledJob.id, ScheduledJob.name, ScheduledJob.enabled, ScheduledJob.run_count)
    )
    counts = await ctx.data.rows(
        system.select(JobRun.job_id, JobRun.status, func.count(), func.max(JobRun.finished_at)).group_by(
            JobRun.job_id, JobRun.status
        )
    )
    by_job: dict[int, dict[str, int]] = {}
    succeeded: dict[int, datetime] = {}
    for job_id, status, count, last in counts:
        by_job.setdefault(job_id, {})[status] = int(count)
        if status == RunStatus.SUCCEEDED.value and last is not None:
            succeeded[job_id] = as_utc(last)
    return [
        JobFigures(name, bool(enabled), int(executions), by_job.get(job_id, {}), succeeded.get(job_id))
        for job_id, name, enabled, executions in jobs
    ]
