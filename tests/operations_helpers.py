"""Shared pieces of the operations tests: queries, targets registered for a test only, waiting for a run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.audit import Event
from models.operations import JobRun, ScheduledJob
from resolvers.operations import targets
from resolvers.operations.runs import RunContext
from resolvers.operations.targets import Param
from tests.conftest import GraphQLClient

SCHEDULER_ON: dict[str, Any] = {"scheduler_enabled": True}

JOB_FIELDS = """id name target cron timeZone args enabled system misfirePolicy allowOverlap executionCount nextRunAt
 lastRun { id status }"""
JOBS = "{ jobs(first: 100) { totalCount edges { node { " + JOB_FIELDS + " } } } }"
JOB = "query ($id: ID!) { job(id: $id) { " + JOB_FIELDS + " } }"
RUN_FIELDS = (
    "id jobId scheduledFor trigger status startedAt finishedAt durationMs rowsAffected error note instance requestedBy"
)
RUNS = "query ($id: ID!) { jobRuns(jobId: $id, first: 100) { totalCount edges { node { " + RUN_FIELDS + " } } } }"
CREATE = "mutation ($input: CreateJobInput!) { createJob(input: $input) { " + JOB_FIELDS + " } }"
UPDATE = "mutation ($id: ID!, $input: UpdateJobInput!) { updateJob(id: $id, input: $input) { " + JOB_FIELDS + " } }"
PAUSE = "mutation ($id: ID!) { pauseJob(id: $id) { id enabled nextRunAt } }"
RESUME = "mutation ($id: ID!) { resumeJob(id: $id) { id enabled nextRunAt } }"
RUN_NOW = "mutation ($id: ID!) { runJobNow(id: $id) { " + RUN_FIELDS + " } }"
DELETE = "mutation ($id: ID!) { deleteJob(id: $id) }"


async def job_id(client: GraphQLClient, name: str) -> str:
    data = await client.data(JOBS, as_="admin")
    return next(edge["node"]["id"] for edge in data["jobs"]["edges"] if edge["node"]["name"] == name)


async def create_job(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = (await client.data(CREATE, {"input": fields}, as_="admin"))["createJob"]
    return job


async def runs_of(client: GraphQLClient, job: str) -> list[dict[str, Any]]:
    data = await client.data(RUNS, {"id": job}, as_="admin")
    return [edge["node"] for edge in data["jobRuns"]["edges"]]


async def wait_for_run(client: GraphQLClient, job: str, run: str, *, within: float = 20.0) -> dict[str, Any]:
    """The run once it has ended (polling the API)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = next((item for item in await runs_of(client, job) if item["id"] == run), None)
        if found is not None and found["status"] != "RUNNING":
            return found
        if loop.time() > deadline:
            raise AssertionError(f"run {run} still {found and found['status']} after {within} s")
        await asyncio.sleep(0.05)


async def stored_runs(db: Database, name: str) -> list[JobRun]:
    async with db.session() as session:
        job = (await session.execute(select(ScheduledJob.id).where(ScheduledJob.name == name))).scalar_one()
        rows = await session.execute(select(JobRun).where(JobRun.job_id == job).order_by(JobRun.id))
        return list(rows.scalars().all())


async def events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))
        return list(rows.scalars().all())


class Gate:
    """A target that counts its runs and, when told to, waits until released (a long run)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, run: RunContext) -> int:
        self.calls.append(dict(run.args))
        self.started.set()
        if self.hold:
            await self.release.wait()
        if run.args.get("fail"):
            raise ValueError("the test target was told to fail")
        return int(run.args.get("rows") or 0)


@contextmanager
def registered(name: str = "test.gate") -> Iterator[Gate]:
    """A target registered for one test only."""
    gate = Gate()
    targets.target(
        name,
        "A target of the tests",
        Param("rows", "int", "rows it says it affected", 0, False, 0, 1000),
        Param("fail", "bool", "raise", False),
        Param("label", "str", "any text", None, False, max_length=20),
    )(gate)
    try:
        yield gate
    finally:
        targets.unregister(name)
