"""Operations: scheduled jobs and their runs, and the per-minute request figures of every instance.

A job names a registered target (resolvers/operations/targets.py), never code; a run is claimed once per
(job, scheduled time) by a unique row, so with several instances each firing runs once. Request figures are
counters per (minute, instance, grouping, key, error code): an instance adds to its own rows only, and the
figures of all instances add up when read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    BigKey,
    UTCDateTime,
    big_primary_key,
    created_at_field,
    instant_field,
    updated_at_field,
)


class MisfirePolicy(StrEnum):
    SKIP = "skip"  # a firing missed (the platform down, or later than the grace) is not run
    RUN_ONCE = "run_once"  # the latest missed firing runs once, as soon as an instance can


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # claimed but not run: the previous run still running, a late firing, switched off


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"  # a missed firing run once after the fact (MisfirePolicy.RUN_ONCE)
    MANUAL = "manual"  # runJobNow


class ScheduledJob(SQLModel, table=True):
    __tablename__ = "scheduled_job"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    target: str = Field(max_length=100, index=True)
    cron: str = Field(max_length=120)
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    system: bool = False  # registered by the platform itself: can be paused, not deleted
    misfire_policy: str = Field(default=MisfirePolicy.SKIP.value, max_length=16)
    allow_overlap: bool = False
    # The run in progress of a job whose runs may not overlap (taken by a conditional UPDATE, so only one
    # claim wins it on any database); None when idle.
    active_run_id: int | None = Field(default=None, sa_type=BigKey)
    # Runs started, counted when claimed (an atomic increment): survives the purge of old run rows.
    run_count: int = Field(default=0, sa_type=BigInteger)
    # Firings before this instant are never caught up (creation, a new schedule, resuming after a pause).
    schedule_from: datetime = created_at_field()
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    version: int = 1


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"
    __table_args__ = (
        # The claim: one row per job and scheduled time, whichever instance inserts it first.
        UniqueConstraint("job_id", "scheduled_for", name="uq_job_run_job_scheduled_for"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = big_primary_key()
    job_id: int = Field(foreign_key="scheduled_job.id", index=True)
    scheduled_for: datetime = created_at_field()
    trigger: str = Field(default=RunTrigger.SCHEDULE.value, max_length=16)
    status: str = Field(default=RunStatus.RUNNING.value, max_length=16, index=True)
    instance: str = Field(default="", max_length=32)
    started_at: datetime = created_at_field()
    heartbeat_at: datetime = created_at_field()
    finished_at: datetime | None = instant_field()
    rows_affected: int = Field(default=0, sa_type=BigInteger)
    # Why a run failed or was skipped: a message, never a stack trace.
    message: str | None = Field(default=None, max_length=500)
    requested_by_id: int | None = Field(default=None, foreign_key="app_user.id")


# Upper bounds (milliseconds) of the latency buckets each figure row counts; the last bucket is unbounded.
LATENCY_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKET_COLUMNS: tuple[str, ...] = (*(f"le_{bound}" for bound in LATENCY_BUCKETS_MS), "le_inf")


class FigureKind(StrEnum):
    OPERATION = "operation"
    STAFF = "staff"
    ROLE = "role"


class RequestMinute(SQLModel, table=True):
    """Requests of one minute on one instance for one key of a grouping, with one outcome (code '' = no error)."""

    __tablename__ = "request_minute"
    __table_args__ = (
        UniqueConstraint("minute", "instance", "kind", "key", "code", name="uq_request_minute"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = big_primary_key()
    minute: datetime = Field(sa_type=UTCDateTime, index=True)  # the minute's start, UTC
    instance: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    key: str = Field(max_length=100)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)  # kind staff
    code: str = Field(default="", max_length=32)
    requests: int = Field(default=0, sa_type=BigInteger)
    duration_ms: int = Field(default=0, sa_type=BigInteger)  # the sum, for the mean
    max_ms: int = Field(default=0, sa_type=BigInteger)
    le_5: int = Field(default=0, sa_type=BigInteger)
    le_10: int = Field(default=0, sa_type=BigInteger)
    le_25: int = Field(default=0, sa_type=BigInteger)
    le_50: int = Field(default=0, sa_type=BigInteger)
    le_100: int = Field(default=0, sa_type=BigInteger)
    le_250: int = Field(default=0, sa_type=BigInteger)
    le_500: int = Field(default=0, sa_type=BigInteger)
    le_1000: int = Field(default=0, sa_type=BigInteger)
    le_2500: int = Field(default=0, sa_type=BigInteger)
    le_5000: int = Field(default=0, sa_type=BigInteger)
    le_10000: int = Field(default=0, sa_type=BigInteger)
    le_inf: int = Field(default=0, sa_type=BigInteger)
