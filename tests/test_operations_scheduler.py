"""The scheduler across instances: two app instances in this process on one database (SQLite, or MariaDB with
TEST_DATABASE_URL). A firing due on both runs once (the claim of (job, scheduled time) is a unique row); a run
whose instance dies is failed by the other instance's sweep; late firings, overlapping firings and missed
firings follow the job's policies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from core.db import Database
from core.ids import decode_id
from core.timeutil import utcnow
from models.operations import RunTrigger, ScheduledJob
from resolvers.operations.scheduler import Scheduler
from server import create_app
from tests.conftest import GraphQLClient, make_settings, reset_database
from tests.operations_helpers import (
    JOB,
    RUN_NOW,
    SCHEDULER_ON,
    create_job,
    events,
    registered,
    stored_runs,
    wait_for_run,
)

YEARLY = "0 4 1 1 *"  # never due while a test runs (short of New Year's night), so the test's own firings are all
FAST = {**SCHEDULER_ON, "job_heartbeat_seconds": 0.2, "job_stale_seconds": 1.5}


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    """Instances A and B (no Redis: each schedule is reloaded with `sync`, as the change notice would)."""
    await reset_database(database_url)
    async with AsyncExitStack() as stack:
        clients = []
        for port in (50011, 50012):
            app = create_app(make_settings(database_url, **FAST))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", port))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            clients.append(GraphQLClient(http, app))
        yield clients[0], clients[1]


def scheduler(client: GraphQLClient) -> Scheduler:
    found = client.services.scheduler
    assert found is not None
    return found


async def job_pk(client: GraphQLClient, **fields: Any) -> int:
    return decode_id("Job", (await create_job(client, **fields))["id"])


async def test_a_firing_due_on_two_instances_runs_once(pair: tuple[GraphQLClient, GraphQLClient], db: Database) -> None:
    a, b = pair
    assert scheduler(a).instance != scheduler(b).instance
    with registered() as gate:
        # A schedule whose own firings never fall within the test (January 1st, 04:00): every firing below is set by
        # the test. An every-minute job here also fired at the next minute when a run crossed one (12 runs, not 11).
        pk = await job_pk(a, name="due-on-both", target="test.gate", cron=YEARLY)
        await scheduler(b).sync()  # the change notice's work (through Redis between hosts)
        # The clock itself, on both instances: APScheduler fires the same firing on each.
        due = utcnow().replace(microsecond=0) + timedelta(seconds=1)
        for client in (a, b):
            scheduler(client)._aps.modify_job(f"job-{pk}", next_run_time=due)  # type: ignore[union-attr]
        await _until(lambda: _ended(db, "due-on-both", 1))
        # Ten more firings (recent, within the misfire grace), each fired by both instances at the same moment.
        base = utcnow() - timedelta(seconds=30)
        for minute in range(10):
            when = base + timedelta(seconds=minute)
            results = await asyncio.gather(
                scheduler(a).fire(pk, when, RunTrigger.SCHEDULE), scheduler(b).fire(pk, when, RunTrigger.SCHEDULE)
            )
            assert sum(result is not None for result in results) == 1, minute  # one claim won, one lost
    runs = await stored_runs(db, "due-on-both")
    assert len(runs) == 11 and len({run.scheduled_for for run in runs}) == 11
    assert runs[0].scheduled_for == due and runs[0].trigger == "schedule"
    assert {run.status for run in runs} == {"succeeded"} and len(gate.calls) == 11
    assert {run.instance for run in runs} <= {scheduler(a).instance, scheduler(b).instance}
    job = (await a.data(JOB, {"id": _gid(pk)}, as_="admin"))["job"]
    assert job["executionCount"] == 11
    # Each won claim recorded one event, a lost one none. The built-in jobs (the audit seal every 10 minutes) fire in
    # this pair too: a run crossing their minute has their event beside these (CI, 2026-12-02: 12, not 11).
    ours = {str(run.id) for run in runs}
    claimed = [e for e in await events(db, "startJobRun") if e.outcome == "success"]
    assert sorted(e.entity_id for e in claimed if e.entity_id in ours) == sorted(ours)
    assert all(e.detail["job"] != "due-on-both" for e in claimed if e.entity_id not in ours)


async def test_a_run_whose_instance_dies_is_failed_by_the_other(
    pair: tuple[GraphQLClient, GraphQLClient], db: Database
) -> None:
    a, b = pair
    with registered() as gate:
        gate.hold = True
        pk = await job_pk(a, name="long-run", target="test.gate", cron="0 4 * * *")
        run = (await a.data(RUN_NOW, {"id": _gid(pk)}, as_="admin"))["runJobNow"]
        await gate.started.wait()
        # Alive: A marks the run every 0.2 s, so B's sweeps (every 0.2 s) leave it running past the stale time.
        await asyncio.sleep(2 * FAST["job_stale_seconds"])
        assert [r.status for r in await stored_runs(db, "long-run")] == ["running"]
        # A dies: nothing more comes from it (no heartbeat, no end).
        await scheduler(a).stop(record=False)
        failed = await wait_for_run(b, _gid(pk), run["id"])
        assert failed["status"] == "FAILED"
        assert failed["error"].startswith(f"instance {scheduler(a).instance[:12]} stopped answering")
        assert scheduler(b).instance[:12] in failed["error"]
        gate.hold = False
        again = (await b.data(RUN_NOW, {"id": _gid(pk)}, as_="admin"))["runJobNow"]  # the job is free again
        assert (await wait_for_run(b, _gid(pk), again["id"]))["status"] == "SUCCEEDED"
    stale = [e for e in await events(db, "failStaleJobRun") if e.outcome == "success"]
    assert len(stale) == 1 and stale[0].detail == {"stale": True, "instance": scheduler(a).instance}


async def test_late_and_overlapping_firings(pair: tuple[GraphQLClient, GraphQLClient], db: Database) -> None:
    a, _b = pair
    late = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)
    with registered() as gate:
        skipping = await job_pk(a, name="skips-late", target="test.gate", cron=YEARLY)
        catching = await job_pk(a, name="runs-late", target="test.gate", cron=YEARLY, misfirePolicy="RUN_ONCE")
        await scheduler(a).fire(skipping, late, RunTrigger.SCHEDULE)
        await scheduler(a).fire(catching, late, RunTrigger.SCHEDULE)
        [skipped] = await stored_runs(db, "skips-late")
        assert skipped.status == "skipped" and skipped.message is not None and skipped.message.startswith("missed by")
        assert [run.status for run in await stored_runs(db, "runs-late")] == ["succeeded"]
        assert len(gate.calls) == 1

        gate.hold = True
        gate.started.clear()
        now = utcnow()
        first = asyncio.create_task(scheduler(a).fire(skipping, now, RunTrigger.SCHEDULE))
        await gate.started.wait()
        await scheduler(a).fire(skipping, now + timedelta(seconds=1), RunTrigger.SCHEDULE)
        gate.release.set()
        await first
    runs = await stored_runs(db, "skips-late")
    assert [(run.status, run.message) for run in runs[1:]] == [
        ("succeeded", None),
        ("skipped", "the previous run is still running"),
    ]
    job = (await a.data(JOB, {"id": _gid(skipping)}, as_="admin"))["job"]
    assert job["executionCount"] == 1  # skipped firings are recorded, not counted as executions


async def test_a_missed_firing_is_caught_up_once(pair: tuple[GraphQLClient, GraphQLClient], db: Database) -> None:
    a, b = pair
    with registered() as gate:
        await job_pk(a, name="hourly-catch-up", target="test.gate", cron="0 * * * *", misfirePolicy="RUN_ONCE")
        await job_pk(a, name="hourly-skip", target="test.gate", cron="0 * * * *")
        async with db.transaction() as session:  # as if both were scheduled three hours ago and nothing ran since
            await session.execute(update(ScheduledJob).values(schedule_from=utcnow() - timedelta(hours=3)))
        await asyncio.gather(scheduler(a).sync(), scheduler(b).sync())
        await _until(lambda: _ended(db, "hourly-catch-up", 1))
        await asyncio.gather(scheduler(a).sync(), scheduler(b).sync())  # nothing more to catch up
        await asyncio.sleep(0.3)
    [run] = await stored_runs(db, "hourly-catch-up")
    assert run.trigger == "catch_up" and run.status == "succeeded"
    assert run.scheduled_for == utcnow().replace(minute=0, second=0, microsecond=0)  # the latest missed hour
    assert await stored_runs(db, "hourly-skip") == [] and len(gate.calls) == 1


def _gid(pk: int) -> str:
    from core.ids import encode_id

    return encode_id("Job", pk)


async def _ended(db: Database, name: str, count: int) -> bool:
    runs = await stored_runs(db, name)
    return len([run for run in runs if run.status != "running"]) >= count


async def _until(check: Any, within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("did not happen in time")
        await asyncio.sleep(0.05)
