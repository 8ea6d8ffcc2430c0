"""Scheduled jobs over the API: the registered targets, jobs with their counts and next run, their runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from core.ids import decode_id, encode_id
from models import operations as m
from resolvers.data.context import Info
from resolvers.operations import jobs
from resolvers.operations.jobs import JobLoaders
from resolvers.operations.targets import TARGETS, Param, Target
from schema.engine.connection import Connection, connection

JobRunStatusEnum = strawberry.enum(m.RunStatus, name="JobRunStatus")
JobRunTriggerEnum = strawberry.enum(m.RunTrigger, name="JobRunTrigger")
MisfirePolicyEnum = strawberry.enum(m.MisfirePolicy, name="MisfirePolicy")


@strawberry.type(name="JobParameter")
class JobParameterType:
    name: str
    type: str = strawberry.field(description="int, bool or str")
    description: str
    required: bool
    default: JSON | None
    minimum: int | None
    maximum: int | None

    @classmethod
    def of(cls, param: Param) -> JobParameterType:
        return cls(
            name=param.name,
            type=param.kind,
            description=param.description,
            required=param.required,
            default=param.default,
            minimum=param.minimum,
            maximum=param.maximum,
        )


@strawberry.type(name="JobTarget", description="What a job may run: registered by the platform's modules, by name.")
class JobTargetType:
    name: str
    description: str
    parameters: list[JobParameterType]
    system_schedule: str | None = strawberry.field(
        description="The schedule of the system job the platform keeps for this target, if any."
    )

    @classmethod
    def of(cls, target: Target) -> JobTargetType:
        return cls(
            name=target.name,
            description=target.description,
            parameters=[JobParameterType.of(param) for param in target.params],
            system_schedule=target.system_cron,
        )


@strawberry.type(name="JobRun")
class JobRunType:
    id: strawberry.ID
    job_id: strawberry.ID
    scheduled_for: datetime
    trigger: JobRunTriggerEnum  # type: ignore[valid-type]
    status: JobRunStatusEnum  # type: ignore[valid-type]
    started_at: datetime
    finished_at: datetime | None
    rows_affected: int
    error: str | None = strawberry.field(description="Why the run failed (a message, never a stack trace).")
    note: str | None = strawberry.field(description="Why the run was skipped.")
    instance: str = strawberry.field(description="The app instance that ran it.")
    _requested_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Milliseconds from start to end.")
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)

    @strawberry.field(description="Who asked for it (runJobNow); none for scheduled runs.")
    async def requested_by(self, info: Info) -> str | None:
        if self._requested_by_id is None:
            return None
        return await info.context.loaders.user_name_by_id.load(self._requested_by_id)

    @classmethod
    def from_row(cls, row: m.JobRun) -> JobRunType:
        status = m.RunStatus(row.status)
        return cls(
            id=strawberry.ID(encode_id("JobRun", row.id)),  # type: ignore[arg-type]
            job_id=strawberry.ID(encode_id("Job", row.job_id)),
            scheduled_for=row.scheduled_for,
            trigger=m.RunTrigger(row.trigger),
            status=status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            rows_affected=row.rows_affected,
            error=row.message if status is m.RunStatus.FAILED else None,
            note=row.message if status is m.RunStatus.SKIPPED else None,
            instance=row.instance,
            _requested_by_id=row.requested_by_id,
        )


@strawberry.type(name="Job")
class JobType:
    id: strawberry.ID
    name: str
    target: str
    cron: str = strawberry.field(description="minute hour day month weekday, in timeZone")
    time_zone: str
    args: JSON
    enabled: bool = strawberry.field(description="False while paused.")
    system: bool = strawberry.field(description="Kept by the platform: can be paused, not deleted.")
    misfire_policy: MisfirePolicyEnum  # type: ignore[valid-type]
    allow_overlap: bool
    execution_count: int = strawberry.field(description="Runs started, on any instance, since the job was created.")
    next_run_at: datetime | None = strawberry.field(description="The next firing (none while paused).")
    created_at: datetime
    updated_at: datetime
    _id: strawberry.Private[int]

    @strawberry.field(description="The latest run, whatever its outcome.")
    async def last_run(self, info: Info) -> JobRunType | None:
        run = await info.context.loaders_of(JobLoaders).last_run_by_job_id.load(self._id)
        return None if run is None else JobRunType.from_row(run)

    @classmethod
    def converter(cls, info: Info) -> Any:
        ctx = info.context

        def convert(row: m.ScheduledJob) -> JobType:
            return cls(
                id=strawberry.ID(encode_id("Job", row.id)),  # type: ignore[arg-type]
                name=row.name,
                target=row.target,
                cron=row.cron,
                time_zone=ctx.settings.clinic_tz,
                args=row.args or {},
                enabled=row.enabled,
                system=row.system,
                misfire_policy=m.MisfirePolicy(row.misfire_policy),
                allow_overlap=row.allow_overlap,
                execution_count=row.run_count,
                next_run_at=jobs.next_run_at(ctx, row),
                created_at=row.created_at,
                updated_at=row.updated_at,
                _id=row.id,  # type: ignore[arg-type]
            )

        return convert


@strawberry.input
class CreateJobInput:
    name: str
    target: str = strawberry.field(description="A registered target's name (jobTargets).")
    cron: str = strawberry.field(description="minute hour day month weekday, in CLINIC_TZ")
    args: JSON | None = strawberry.field(default=None, description="The target's parameters, checked.")
    enabled: bool = True
    misfire_policy: MisfirePolicyEnum = m.MisfirePolicy.SKIP  # type: ignore[valid-type]
    allow_overlap: bool = False


@strawberry.input
class UpdateJobInput:
    name: str | None = strawberry.UNSET
    target: str | None = strawberry.UNSET
    cron: str | None = strawberry.UNSET
    args: JSON | None = strawberry.UNSET
    misfire_policy: MisfirePolicyEnum | None = strawberry.UNSET  # type: ignore[valid-type]
    allow_overlap: bool | None = strawberry.UNSET


def _update(input: UpdateJobInput) -> jobs.JobInput:
    data = jobs.JobInput()
    for name in ("name", "target", "cron", "args", "misfire_policy", "allow_overlap"):
        value = getattr(input, name)
        if value is strawberry.UNSET:
            continue
        if hasattr(value, "value"):
            value = value.value
        setattr(data, name, value)
        data.given.add(name)
    return data


@strawberry.type
class JobsQuery:
    @strawberry.field(description="The targets jobs may run, with their parameters.")
    def job_targets(self) -> list[JobTargetType]:
        return [JobTargetType.of(TARGETS[name]) for name in sorted(TARGETS)]

    @strawberry.field(description="Scheduled jobs, system jobs included, oldest first.")
    async def jobs(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[JobType]:
        page = await jobs.list_jobs(info.context, first=first, after=after)
        return connection(page, JobType.converter(info))

    @strawberry.field
    async def job(self, info: Info, id: strawberry.ID) -> JobType:
        return JobType.converter(info)(await jobs.get_job(info.context, decode_id("Job", id)))

    @strawberry.field(description="A job's runs, newest first.")
    async def job_runs(
        self,
        info: Info,
        job_id: strawberry.ID,
        first: int | None = 20,
        after: str | None = None,
        status: JobRunStatusEnum | None = None,  # type: ignore[valid-type]
    ) -> Connection[JobRunType]:
        page = await jobs.list_runs(
            info.context,
            job_id=decode_id("Job", job_id),
            status=status.value if status is not None else None,
            first=first,
            after=after,
        )
        return connection(page, JobRunType.from_row)


@strawberry.type
class JobsMutation:
    @strawberry.mutation(description="Schedule a registered target (never code or an import path).")
    async def create_job(self, info: Info, input: CreateJobInput) -> JobType:
        data = jobs.JobInput(
            name=input.name,
            target=input.target,
            cron=input.cron,
            args=input.args,
            enabled=input.enabled,
            misfire_policy=input.misfire_policy.value,
            allow_overlap=input.allow_overlap,
        )
        return JobType.converter(info)(await jobs.create_job(info.context, data))

    @strawberry.mutation(description="Change a job's schedule, arguments or policies (a system job keeps its target).")
    async def update_job(self, info: Info, id: strawberry.ID, input: UpdateJobInput) -> JobType:
        job = await jobs.update_job(info.context, decode_id("Job", id), _update(input))
        return JobType.converter(info)(job)

    @strawberry.mutation(description="Stop firing the job until resumed.")
    async def pause_job(self, info: Info, id: strawberry.ID) -> JobType:
        return JobType.converter(info)(await jobs.set_enabled(info.context, decode_id("Job", id), False))

    @strawberry.mutation(description="Fire on schedule again (the firings missed while paused are not run).")
    async def resume_job(self, info: Info, id: strawberry.ID) -> JobType:
        return JobType.converter(info)(await jobs.set_enabled(info.context, decode_id("Job", id), True))

    @strawberry.mutation(description="Start a run now, on this instance, in the background.")
    async def run_job_now(self, info: Info, id: strawberry.ID) -> JobRunType:
        return JobRunType.from_row(await jobs.run_job_now(info.context, decode_id("Job", id)))

    @strawberry.mutation(description="Delete a job and its runs. System jobs can be paused, not deleted.")
    async def delete_job(self, info: Info, id: strawberry.ID) -> bool:
        return await jobs.delete_job(info.context, decode_id("Job", id))
