"""Scheduled jobs over the API: list, read, create, change, pause, resume, run now, delete (never a system job).

A job names a registered target (resolvers/operations/targets.py) and arguments checked against its declared
parameters; its cron expression is checked and read in CLINIC_TZ. Every change is a write unit (audited) and
then a notice, so every instance reloads its schedule at once (resolvers/operations/scheduler.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from strawberry.dataloader import DataLoader

from core.errors import bad_input, conflict, forbidden
from core.timeutil import utcnow
from core.validation import choice, text
from models.operations import JobRun, MisfirePolicy, RunStatus, ScheduledJob
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.operations import cron, targets
from resolvers.operations.runs import JOBS_CHANNEL, run_of
from resolvers.operations.targets import Target


class JobLoaders:
    """Per request: each job's latest run (one statement for a page of jobs)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.last_run_by_job_id: DataLoader[int, JobRun | None] = DataLoader(self._last_runs)

    async def _last_runs(self, job_ids: Sequence[int]) -> list[JobRun | None]:
        data = self._ctx.data
        latest = await data.select(
            JobRun,
            func.max(JobRun.id),
            then=lambda s: s.where(JobRun.job_id.in_(list(job_ids))).group_by(JobRun.job_id),
        )
        run_ids = [run_id for run_id in await data.scalars(latest) if run_id is not None]
        runs = await data.objects(await data.select(JobRun, then=lambda s: s.where(JobRun.id.in_(run_ids))))
        by_job = {run.job_id: run for run in runs}
        return [by_job.get(job_id) for job_id in job_ids]


def next_run_at(ctx: Context, job: ScheduledJob) -> datetime | None:
    if not job.enabled:
        return None
    try:
        return cron.next_fire(job.cron, ctx.settings.clinic_tz, utcnow())
    except ValueError:
        return None


# ---- reads -------------------------------------------------------------------------------------


async def list_jobs(ctx: Context, *, first: int | None, after: str | None) -> Page[ScheduledJob]:
    statement = await ctx.data.select(ScheduledJob)
    return await ctx.data.page(statement, keys=[ScheduledJob.id], first=first, after=after)


async def get_job(ctx: Context, job_id: int) -> ScheduledJob:
    job: ScheduledJob = await ctx.data.get(ScheduledJob, job_id, what="Job")
    return job


async def list_runs(
    ctx: Context, *, job_id: int, status: str | None, first: int | None, after: str | None
) -> Page[JobRun]:
    await get_job(ctx, job_id)
    statement = await ctx.data.select(JobRun, then=lambda s: s.where(JobRun.job_id == job_id))
    if status is not None:
        statement = statement.where(JobRun.status == choice(RunStatus, status, "status").value)
    return await ctx.data.page(statement, keys=[JobRun.id], first=first, after=after, descending=True)


# ---- writes ------------------------------------------------------------------------------------


@dataclass
class JobInput:
    name: str | None = None
    target: str | None = None
    cron: str | None = None
    args: Any = None
    enabled: bool | None = None
    misfire_policy: str | None = None
    allow_overlap: bool | None = None
    given: set[str] = field(default_factory=set)  # which fields the client sent


def _target_of(name: str | None) -> Target:
    if not name:
        raise bad_input("Name a registered target (jobTargets lists them)", "target")
    return targets.find(name)


async def jobs_changed(ctx: Context) -> None:
    """After a committed change: every instance reloads its schedule."""
    await ctx.services.notifier.publish(JOBS_CHANNEL)


async def create_job(ctx: Context, data: JobInput) -> ScheduledJob:
    name = text(data.name, "name", limit=100, required=True) or ""
    target = _target_of(data.target)
    expression = cron.check(data.cron or "", ctx.settings.clinic_tz)
    args = target.check_args(data.args)
    misfire = choice(MisfirePolicy, data.misfire_policy or MisfirePolicy.SKIP.value, "misfirePolicy")
    async with ctx.data.write(
        operation="createJob", action="create", entity_type="Job", conflict_message="A job with this name exists"
    ) as unit:
        now = utcnow()
        job = ScheduledJob(
            name=name,
            target=target.name,
            cron=expression,
            args=args,
            enabled=data.enabled if data.enabled is not None else True,
            misfire_policy=misfire.value,
            allow_overlap=bool(data.allow_overlap),
            schedule_from=now,
            created_by_id=ctx.principal.user_id,
            created_at=now,
            updated_at=now,
        )
        unit.add(job)
        await unit.flush()
        unit.entity_id = str(job.id)
        unit.detail = {"name": name, "target": target.name, "cron": expression, "args": args}
    await jobs_changed(ctx)
    return job


async def update_job(ctx: Context, job_id: int, data: JobInput) -> ScheduledJob:
    """Change a job; a system job keeps its name and target (its schedule, arguments and policies may change)."""
    async with ctx.data.write(
        operation="updateJob", action="update", entity_type="Job", conflict_message="A job with this name exists"
    ) as unit:
        job: ScheduledJob = await unit.get(ScheduledJob, job_id, what="Job")
        if job.system and (
            ("name" in data.given and data.name != job.name) or ("target" in data.given and data.target != job.target)
        ):
            raise forbidden("A system job keeps its name and target")
        changed: list[str] = []
        if "name" in data.given:
            job.name = text(data.name, "name", limit=100, required=True) or job.name
            changed.append("name")
        target = _target_of(data.target) if "target" in data.given else targets.find(job.target)
        if "target" in data.given:
            job.target = target.name
            changed.append("target")
        if "args" in data.given or "target" in data.given:
            job.args = target.check_args(data.args if "args" in data.given else job.args)
            changed.append("args")
        if "cron" in data.given:
            job.cron = cron.check(data.cron or "", ctx.settings.clinic_tz)
            job.schedule_from = utcnow()  # firings of the old schedule are never caught up
            changed.append("cron")
        if "misfire_policy" in data.given and data.misfire_policy is not None:
            job.misfire_policy = choice(MisfirePolicy, data.misfire_policy, "misfirePolicy").value
            changed.append("misfirePolicy")
        if "allow_overlap" in data.given and data.allow_overlap is not None:
            job.allow_overlap = data.allow_overlap
            changed.append("allowOverlap")
        job.updated_at = utcnow()
        job.version += 1
        unit.add(job)
        unit.entity_id = str(job_id)
        unit.detail = {"changed": changed, "cron": job.cron, "args": job.args}
    await jobs_changed(ctx)
    return job


async def set_enabled(ctx: Context, job_id: int, enabled: bool) -> ScheduledJob:
    """Pause or resume. Resuming does not catch up the firings of the pause."""
    operation = "resumeJob" if enabled else "pauseJob"
    async with ctx.data.write(operation=operation, action="update", entity_type="Job") as unit:
        job: ScheduledJob = await unit.get(ScheduledJob, job_id, what="Job")
        if job.enabled == enabled:
            raise conflict("The job is already running on schedule" if enabled else "The job is already paused")
        job.enabled = enabled
        now = utcnow()
        if enabled:
            job.schedule_from = now
        job.updated_at = now
        job.version += 1
        unit.add(job)
        unit.entity_id = str(job_id)
    await jobs_changed(ctx)
    return job


async def delete_job(ctx: Context, job_id: int) -> bool:
    """Delete a job and its runs (the events keep what they did). System jobs can be paused, not deleted."""
    system = ctx.data.unscoped("a deleted job's runs go with it")
    async with ctx.data.write(operation="deleteJob", action="delete", entity_type="Job") as unit:
        job: ScheduledJob = await unit.get(ScheduledJob, job_id, what="Job")
        if job.system:
            raise forbidden("A system job can be paused, not deleted")
        running = await unit.first(
            system.select(JobRun).where(JobRun.job_id == job_id, JobRun.status == RunStatus.RUNNING.value)
        )
        if running is not None:
            raise conflict("The job is running; delete it when the run has ended")
        runs = await unit.execute(system.delete(JobRun).where(JobRun.job_id == job_id))
        await unit.execute(system.delete(ScheduledJob).where(ScheduledJob.id == job_id))
        unit.entity_id = str(job_id)
        unit.detail = {
            "name": job.name,
            "target": job.target,
            "cron": job.cron,
            "runs": runs,
            "executions": job.run_count,
        }
    await jobs_changed(ctx)
    return True


async def run_job_now(ctx: Context, job_id: int) -> JobRun:
    """Start a run at once on this instance (a paused job too); it goes on in the background."""
    job = await get_job(ctx, job_id)
    targets.find(job.target)
    scheduler = ctx.services.scheduler
    if scheduler is None:
        raise conflict("This instance runs no jobs")
    run_id = await scheduler.run_now(ctx, job_id)
    return await run_of(ctx, run_id)
