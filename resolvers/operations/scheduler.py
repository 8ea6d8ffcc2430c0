"""The scheduler inside each app instance: APScheduler 3.x as the clock, the database as the judge.

Every instance schedules every enabled job (APScheduler's memory store, reloaded from the `scheduled_job` table
on start-up, on a change notice and every minute). APScheduler coordinates nothing between processes, so a
firing only asks the database: the instance whose claim of (job, scheduled time) wins runs it
(resolvers/operations/runs.py); the others do nothing. The scheduled time comes from APScheduler's own run time
(the executor below hands it over), the same instant on every instance.

Misfires: a firing later than JOB_MISFIRE_GRACE_SECONDS is skipped (recorded) under the `skip` policy and run
under `run_once`; `run_once` also catches up the latest firing missed while no instance was running it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import DBAPIError

import resolvers.operations.system  # noqa: F401  (the platform's own targets register)
from core.errors import AppError, ErrorCode
from core.timeutil import as_utc, utcnow
from models.operations import MisfirePolicy, RunStatus, RunTrigger, ScheduledJob
from resolvers.data.claims import claim, lost_race
from resolvers.operations import cron
from resolvers.operations.runs import (
    JOBS_CHANNEL,
    Claimed,
    RunContext,
    Skip,
    claim_run,
    describe,
    fail_stale,
    finish_run,
    heartbeat,
    latest_claimed,
    system_context,
)
from resolvers.operations.targets import TARGETS

if TYPE_CHECKING:
    from resolvers.data.context import Context, Services

log = logging.getLogger("followup.scheduler")
RESYNC_SECONDS = 60.0


class FiringExecutor(BaseExecutor):
    """Runs a job's coroutine with the time it was scheduled for (APScheduler's own executor keeps it back)."""

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.tasks: set[asyncio.Task[Any]] = set()

    def shutdown(self, wait: bool = True) -> None:
        for task in self.tasks:
            task.cancel()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        task = asyncio.get_running_loop().create_task(job.func(*job.args, run_times[-1]))
        self.tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self.tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self._run_job_error(job.id, finished.exception())
            else:
                self._run_job_success(job.id, [])

        task.add_done_callback(done)


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.zone = self.settings.clinic_tz
        self.instance = services.notifier.instance
        self._aps: AsyncIOScheduler | None = None
        self._executor: FiringExecutor | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._running: dict[int, asyncio.Task[Any]] = {}  # run id -> the task running it here
        self._scheduled: dict[int, str] = {}  # job id -> the cron expression scheduled for it here
        self._stopping = False
        self._sync_lock = asyncio.Lock()
        services.notifier.subscribe(JOBS_CHANNEL, self.sync)

    @property
    def enabled(self) -> bool:
        return self.settings.scheduler_enabled

    def running_here(self) -> list[int]:
        return sorted(self._running)

    # ---- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled or self._aps is not None:
            return
        await ensure_system_jobs(system_context(self.services, "seed"))
        self._executor = FiringExecutor()
        self._aps = AsyncIOScheduler(
            timezone=ZoneInfo(self.zone),
            executors={"default": self._executor},
            # Misfires and overlap are judged against the database, across instances, not by this clock.
            job_defaults={"coalesce": True, "max_instances": 10_000, "misfire_grace_time": None},
        )
        self._aps.start()
        await self.sync()
        self._housekeeping = asyncio.create_task(self._keep_house(), name="scheduler-housekeeping")

    async def stop(self, *, record: bool = True) -> None:
        """Stop firing; runs still going here are cancelled and recorded as failed ("the instance stopped").
        `record=False` writes nothing more, as a killed process would: another instance's sweep fails its runs."""
        self._stopping = record
        if self._aps is not None:
            self._aps.remove_all_jobs()
            self._aps.shutdown(wait=False)
            self._aps = None
        tasks = [task for task in (self._housekeeping,) if task is not None]
        tasks += list(self._running.values())
        tasks += list(self._executor.tasks) if self._executor is not None else []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._housekeeping = None
        self._scheduled.clear()

    async def _keep_house(self) -> None:
        every = self.settings.job_heartbeat_seconds
        since_sync = 0.0
        while True:
            await asyncio.sleep(every)
            since_sync += every
            try:
                await fail_stale(
                    system_context(self.services, "sweep"),
                    stale_after=timedelta(seconds=self.settings.job_stale_seconds),
                    instance=self.instance,
                )
                if since_sync >= RESYNC_SECONDS:  # a change notice lost on the way costs at most this long
                    since_sync = 0.0
                    await self.sync()
            except Exception:
                log.exception("scheduler housekeeping failed; retrying at the next beat")

    # ---- the schedule ----------------------------------------------------------------------------

    async def sync(self) -> None:
        """Make this instance's schedule the table's: add, change and remove jobs; catch up missed firings."""
        if self._aps is None:
            return
        async with self._sync_lock:
            ctx = system_context(self.services, "sync")
            system = ctx.data.unscoped("the scheduler reads every job")
            rows = await ctx.data.rows(
                system.select(
                    ScheduledJob.id, ScheduledJob.cron, ScheduledJob.target, ScheduledJob.misfire_policy
                ).where(ScheduledJob.enabled.is_(True))
            )
            wanted = {row.id: row.cron for row in rows if row.target in TARGETS}
            for job_id in [
                job_id for job_id, expression in self._scheduled.items() if wanted.get(job_id) != expression
            ]:
                with contextlib.suppress(Exception):
                    self._aps.remove_job(f"job-{job_id}")
                del self._scheduled[job_id]
            for job_id, expression in wanted.items():
                if job_id in self._scheduled:
                    continue
                try:
                    trigger = cron.trigger(expression, self.zone)
                except ValueError:
                    log.warning("job %s has an invalid cron expression; not scheduled", job_id)
                    continue
                self._aps.add_job(self._fired, trigger, args=[job_id], id=f"job-{job_id}", replace_existing=True)
                self._scheduled[job_id] = expression
            for row in rows:
                if row.target not in TARGETS:
                    log.warning("job %s names target %s, not registered on this instance", row.id, row.target)
                elif row.misfire_policy == MisfirePolicy.RUN_ONCE.value:
                    await self._catch_up(ctx, row.id, row.cron)

    async def _catch_up(self, ctx: Context, job_id: int, expression: str) -> None:
        """Run once the latest firing nobody claimed (the platform was down, or this job was just loaded)."""
        system = ctx.data.unscoped("the scheduler's catch-up look-up")
        since = await ctx.data.scalar(system.select(ScheduledJob.schedule_from).where(ScheduledJob.id == job_id))
        if since is None:
            return
        claimed = await latest_claimed(ctx, job_id)
        since = max(as_utc(since), claimed) if claimed is not None else as_utc(since)
        missed = cron.latest_fire(expression, self.zone, utcnow(), since)
        if missed is not None:
            self._spawn(self.fire(job_id, missed, RunTrigger.CATCH_UP), f"catch-up-{job_id}")

    def _spawn(self, work: Any, name: str) -> None:
        if self._executor is not None:
            task = asyncio.create_task(work, name=name)
            self._executor.tasks.add(task)
            task.add_done_callback(self._executor.tasks.discard)

    # ---- firing and running ----------------------------------------------------------------------

    async def _fired(self, job_id: int, scheduled_for: datetime | None = None) -> None:
        """What APScheduler calls (through FiringExecutor, which always passes the scheduled time)."""
        if scheduled_for is not None:
            await self.fire(job_id, as_utc(scheduled_for), RunTrigger.SCHEDULE)

    async def fire(self, job_id: int, scheduled_for: datetime, trigger: RunTrigger) -> Claimed | None:
        """One firing of a job on this instance: claimed in the database, run here only if the claim wins."""
        late = utcnow() - scheduled_for
        grace = timedelta(seconds=self.settings.job_misfire_grace_seconds)
        try:
            claimed = await claim_run(
                system_context(self.services, "claim"),
                job_id=job_id,
                scheduled_for=scheduled_for,
                trigger=trigger,
                instance=self.instance,
                late_by=late if late > grace else None,
            )
        except AppError:  # the job was deleted as it fired
            return None
        except Exception:
            log.exception("could not claim a firing of job %s", job_id)
            return None
        if claimed is not None and claimed.status is RunStatus.RUNNING:
            await self.execute(claimed)
        return claimed

    async def run_now(self, ctx: Context, job_id: int) -> int:
        """runJobNow: claimed under the caller (audited as theirs), run here in the background; the run's id."""
        claimed = await claim_run(
            ctx, job_id=job_id, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL, instance=self.instance
        )
        assert claimed is not None  # a manual claim raises rather than losing
        task = asyncio.create_task(self.execute(claimed), name=f"run-{claimed.run_id}")
        self._running.setdefault(claimed.run_id, task)
        return claimed.run_id

    async def run_target_now(self, ctx: Context, target: str) -> int | None:
        """Start a system target's job now, here, claimed under the caller (as runJobNow): for work the caller has
        just queued (a FHIR export). None when its previous run still runs: that run, or the next firing, takes the
        new work."""
        system = system_context(self.services, "kick")
        finder = system.data.unscoped("the system job of a target")
        statement = finder.select(ScheduledJob.id, ScheduledJob.active_run_id).where(
            ScheduledJob.target == target, ScheduledJob.system.is_(True)
        )
        found = await system.data.rows(statement)
        if not found:
            await ensure_system_jobs(system)  # a scheduler switched off here has not made them
            found = await system.data.rows(statement)
        if not found or found[0].active_run_id is not None:
            return None
        try:
            return await self.run_now(ctx, found[0].id)
        except AppError as error:
            if error.code == ErrorCode.CONFLICT:  # started at this very moment by someone else
                return None
            raise

    async def execute(self, claimed: Claimed) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running[claimed.run_id] = task
        ctx = system_context(self.services, f"run{claimed.run_id}")
        beat = asyncio.create_task(self._beat(ctx, claimed.run_id), name=f"heartbeat-{claimed.run_id}")
        status, rows, message = RunStatus.SUCCEEDED, 0, None
        try:
            target = TARGETS.get(claimed.target)
            if target is None:
                raise RuntimeError(f"target {claimed.target} is not registered on this instance")
            run = RunContext(
                ctx=ctx,
                job_id=claimed.job_id,
                run_id=claimed.run_id,
                scheduled_for=claimed.scheduled_for,
                args=target.arguments(claimed.args),
            )
            rows = int(await target.run(run) or 0)
        except asyncio.CancelledError:
            beat.cancel()
            if self._stopping:
                await self._finish(ctx, claimed, RunStatus.FAILED, 0, "interrupted: the instance stopped")
            raise
        except Skip as skipped:
            status, message = RunStatus.SKIPPED, " ".join(str(skipped).split())[:500]
        except Exception as error:
            log.exception("job %s (run %s) failed", claimed.name, claimed.run_id)
            status, message = RunStatus.FAILED, describe(error)
        finally:
            beat.cancel()
            self._running.pop(claimed.run_id, None)
        await self._finish(ctx, claimed, status, rows, message)

    async def _finish(self, ctx: Context, claimed: Claimed, status: RunStatus, rows: int, message: str | None) -> None:
        try:
            kept = await finish_run(
                ctx, run_id=claimed.run_id, job_id=claimed.job_id, status=status, rows=rows, message=message
            )
        except Exception:
            log.exception("could not record the end of run %s", claimed.run_id)
            return
        if not kept:
            log.warning(
                "run %s ended (%s) after it was failed as stale; the stale verdict stays", claimed.run_id, status
            )

    async def _beat(self, ctx: Context, run_id: int) -> None:
        while True:
            await asyncio.sleep(self.settings.job_heartbeat_seconds)
            try:
                if not await heartbeat(ctx, run_id):
                    return
            except Exception:
                log.warning("could not mark run %s alive", run_id)


class _Exists(Exception):
    pass


async def ensure_system_jobs(ctx: Context) -> int:
    """Create the job of every registered system target that has none (by name; whichever instance is first)."""
    system = ctx.data.unscoped("the platform creates its own jobs")
    existing = set(await ctx.data.scalars(system.select(ScheduledJob.name).where(ScheduledJob.system.is_(True))))
    created = 0
    for name, target in sorted(TARGETS.items()):
        if target.system_cron is None or name in existing:
            continue
        try:
            async with ctx.data.write(operation="createJob", action="create", entity_type="Job") as unit:
                now = utcnow()
                values = {
                    "name": name,
                    "target": name,
                    "cron": target.system_cron,
                    "args": {},
                    "enabled": True,
                    "system": True,
                    "misfire_policy": target.system_misfire.value,
                    "allow_overlap": False,
                    "run_count": 0,
                    "schedule_from": now,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                job_id = await claim(unit, ScheduledJob, values)
                if job_id is None:
                    raise _Exists  # another instance created it at the same moment
                unit.entity_id = str(job_id)
                unit.detail = {"system": True, "target": name, "cron": target.system_cron}
        except _Exists:
            continue
        except DBAPIError as error:
            if lost_race(error):  # Galera: another node's insert certified first
                continue
            raise
        created += 1
    return created
