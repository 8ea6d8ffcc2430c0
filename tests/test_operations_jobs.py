"""Scheduled jobs over the API: registered targets only, checked arguments and cron expressions (CLINIC_TZ),
runs recorded with their outcome and counted, system jobs paused but never deleted; admins only by default."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from models.operations import ScheduledJob
from tests.conftest import GraphQLClient, error_codes
from tests.operations_helpers import (
    CREATE,
    DELETE,
    JOB,
    JOBS,
    PAUSE,
    RESUME,
    RUN_NOW,
    SCHEDULER_ON,
    UPDATE,
    create_job,
    events,
    job_id,
    registered,
    runs_of,
    wait_for_run,
)

SYSTEM_JOBS = {
    "appointments.mark_missed",
    "appointments.remind",
    "audit.archive",
    "audit.seal_pending",
    "fhir.export",
    "followups.mark_missed",
    "operations.purge_history",
    "sessions.purge_expired",
    "uploads.purge_unattached",
}
TARGETS = "{ jobTargets { name description systemSchedule parameters { name type required default minimum maximum } } }"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(SCHEDULER_ON)


async def test_the_platform_keeps_its_system_jobs(client: GraphQLClient) -> None:
    data = await client.data(JOBS, as_="admin")
    jobs = {edge["node"]["name"]: edge["node"] for edge in data["jobs"]["edges"]}
    assert set(jobs) == SYSTEM_JOBS
    seal = jobs["audit.seal_pending"]
    assert seal["system"] and seal["enabled"] and seal["executionCount"] == 0 and seal["lastRun"] is None
    assert seal["cron"] == "*/10 * * * *" and seal["timeZone"] == "Asia/Shanghai"
    assert datetime.fromisoformat(seal["nextRunAt"]).minute % 10 == 0
    targets = {item["name"]: item for item in (await client.data(TARGETS, as_="admin"))["jobTargets"]}
    assert SYSTEM_JOBS <= set(targets)
    missed = targets["followups.mark_missed"]
    assert {p["name"]: (p["type"], p["minimum"], p["maximum"]) for p in missed["parameters"]} == {
        "afterDays": ("int", 0, 365),
        "batchSize": ("int", 1, 5000),
    }


async def test_jobs_are_for_admins_only(client: GraphQLClient) -> None:
    for who in ("physician", "chief", "deptadmin", "patient"):
        assert error_codes(await client.run(JOBS, as_=who)) == ["GRAPHQL_VALIDATION_FAILED"], who
        result = await client.run(
            CREATE, {"input": {"name": "x", "target": "audit.seal_pending", "cron": "* * * * *"}}, as_=who
        )
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, who  # no createJob, no CreateJobInput
    assert len((await client.data(JOBS, as_="admin"))["jobs"]["edges"]) == len(SYSTEM_JOBS)


async def test_a_job_runs_a_registered_target_only_with_checked_arguments(client: GraphQLClient, db: Database) -> None:
    base = {"name": "nightly", "target": "test.gate", "cron": "0 3 * * *"}
    with registered():
        refused = {
            "an import path": {**base, "target": "os.system"},
            "an unregistered name": {**base, "target": "subprocess:run"},
            "four fields": {**base, "cron": "0 3 * *"},
            "a minute out of range": {**base, "cron": "61 3 * * *"},
            "a day that never comes": {**base, "cron": "0 3 31 2 *"},
            "an unknown argument": {**base, "args": {"command": "rm -rf /"}},
            "a string for an int": {**base, "args": {"rows": "5"}},
            "a bool for an int": {**base, "args": {"rows": True}},
            "an int out of range": {**base, "args": {"rows": 1001}},
            "an over-long string": {**base, "args": {"label": "x" * 21}},
            "args that are no object": {**base, "args": [1, 2]},
        }
        for why, fields in refused.items():
            result = await client.run(CREATE, {"input": fields}, as_="admin")
            assert error_codes(result) == ["BAD_USER_INPUT"], why
        async with db.session() as session:
            assert (await session.execute(select(ScheduledJob).where(ScheduledJob.name == "nightly"))).first() is None

        job = await create_job(client, **base, args={"rows": 7, "label": "夜间"})
        assert job["args"] == {"rows": 7, "label": "夜间"} and job["misfirePolicy"] == "SKIP" and not job["system"]
        # 03:00 in Shanghai is 19:00 UTC the day before
        assert datetime.fromisoformat(job["nextRunAt"]).strftime("%H:%M") == "19:00"
        duplicate = await client.run(CREATE, {"input": base}, as_="admin")
        assert error_codes(duplicate) == ["CONFLICT"]
    created = [event for event in await events(db, "createJob") if event.actor_id is not None]
    assert [event.entity_id for event in created if event.outcome == "success"] == [str(await _pk(db, "nightly"))]
    assert [event.outcome for event in created].count("bad_user_input") == len(refused)  # refusals are recorded
    assert [event.outcome for event in created].count("conflict") == 1


async def _pk(db: Database, name: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(ScheduledJob.id).where(ScheduledJob.name == name))).scalar_one())


async def test_run_now_records_the_run_and_counts_it(client: GraphQLClient, db: Database) -> None:
    with registered() as gate:
        job = await create_job(client, name="counted", target="test.gate", cron="0 4 * * *", args={"rows": 3})
        first = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        assert first["trigger"] == "MANUAL" and first["jobId"] == job["id"]
        done = await wait_for_run(client, job["id"], first["id"])
        assert done["status"] == "SUCCEEDED" and done["rowsAffected"] == 3 and done["error"] is None
        assert done["requestedBy"] == "王管理 Wang (admin)" and done["durationMs"] >= 0
        second = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        await wait_for_run(client, job["id"], second["id"])
        found = (await client.data(JOB, {"id": job["id"]}, as_="admin"))["job"]
        assert found["executionCount"] == 2 and found["lastRun"] == {"id": second["id"], "status": "SUCCEEDED"}
        assert gate.calls == [{"rows": 3, "fail": False, "label": None}] * 2
    assert len(await runs_of(client, job["id"])) == 2
    assert len([e for e in await events(db, "runJobNow") if e.outcome == "success"]) == 2
    assert {e.detail["status"] for e in await events(db, "finishJobRun") if e.detail} == {"succeeded"}


async def test_a_failed_run_says_why_without_a_stack_trace(client: GraphQLClient) -> None:
    with registered():
        job = await create_job(client, name="failing", target="test.gate", cron="0 4 * * *", args={"fail": True})
        run = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        done = await wait_for_run(client, job["id"], run["id"])
    assert done["status"] == "FAILED"
    assert done["error"] == "ValueError: the test target was told to fail"
    assert "Traceback" not in done["error"] and "File " not in done["error"]


async def test_runs_of_a_job_that_may_not_overlap_do_not(client: GraphQLClient) -> None:
    with registered() as gate:
        gate.hold = True
        job = await create_job(client, name="long", target="test.gate", cron="0 4 * * *")
        first = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        await gate.started.wait()
        second = await client.run(RUN_NOW, {"id": job["id"]}, as_="admin")
        assert error_codes(second) == ["CONFLICT"]
        deleted = await client.run(DELETE, {"id": job["id"]}, as_="admin")
        assert error_codes(deleted) == ["CONFLICT"]  # not while it runs
        gate.release.set()
        assert (await wait_for_run(client, job["id"], first["id"]))["status"] == "SUCCEEDED"
        third = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        assert (await wait_for_run(client, job["id"], third["id"]))["status"] == "SUCCEEDED"

        overlapping = await create_job(
            client, name="overlapping", target="test.gate", cron="0 4 * * *", allowOverlap=True
        )
        gate.release.clear()
        runs = [(await client.data(RUN_NOW, {"id": overlapping["id"]}, as_="admin"))["runJobNow"] for _ in range(2)]
        gate.release.set()
        for run in runs:
            assert (await wait_for_run(client, overlapping["id"], run["id"]))["status"] == "SUCCEEDED"
    found = (await client.data(JOB, {"id": overlapping["id"]}, as_="admin"))["job"]
    assert found["executionCount"] == 2


async def test_update_pause_resume_and_delete(client: GraphQLClient, db: Database) -> None:
    with registered():
        job = await create_job(client, name="editable", target="test.gate", cron="0 4 * * *")
        changed = (
            await client.data(
                UPDATE,
                {
                    "id": job["id"],
                    "input": {"cron": "*/15 8-17 * * 1-5", "args": {"rows": 2}, "misfirePolicy": "RUN_ONCE"},
                },
                as_="admin",
            )
        )["updateJob"]
        assert changed["cron"] == "*/15 8-17 * * 1-5" and changed["args"] == {"rows": 2}
        assert changed["misfirePolicy"] == "RUN_ONCE" and changed["name"] == "editable"
        bad = await client.run(UPDATE, {"id": job["id"], "input": {"cron": "every day"}}, as_="admin")
        assert error_codes(bad) == ["BAD_USER_INPUT"]
        paused = (await client.data(PAUSE, {"id": job["id"]}, as_="admin"))["pauseJob"]
        assert paused == {"id": job["id"], "enabled": False, "nextRunAt": None}
        assert error_codes(await client.run(PAUSE, {"id": job["id"]}, as_="admin")) == ["CONFLICT"]
        resumed = (await client.data(RESUME, {"id": job["id"]}, as_="admin"))["resumeJob"]
        assert resumed["enabled"] and resumed["nextRunAt"] is not None
        run = (await client.data(RUN_NOW, {"id": job["id"]}, as_="admin"))["runJobNow"]
        await wait_for_run(client, job["id"], run["id"])
        assert (await client.data(DELETE, {"id": job["id"]}, as_="admin"))["deleteJob"] is True
        assert error_codes(await client.run(JOB, {"id": job["id"]}, as_="admin")) == ["NOT_FOUND"]
    for operation in ("updateJob", "pauseJob", "resumeJob", "deleteJob"):
        assert [e.entity_id for e in await events(db, operation) if e.outcome == "success"] == [str(await _id(job))]
    deleted = next(e for e in await events(db, "deleteJob") if e.outcome == "success")
    assert deleted.detail is not None and deleted.detail["runs"] == 1 and deleted.detail["name"] == "editable"


async def _id(job: dict[str, Any]) -> int:
    from core.ids import decode_id

    return decode_id("Job", job["id"])


async def test_system_jobs_are_paused_not_deleted(client: GraphQLClient, db: Database) -> None:
    seal = await job_id(client, "audit.seal_pending")
    result = await client.run(DELETE, {"id": seal}, as_="admin")
    assert error_codes(result) == ["FORBIDDEN"]
    renamed = await client.run(UPDATE, {"id": seal, "input": {"target": "audit.archive"}}, as_="admin")
    assert error_codes(renamed) == ["FORBIDDEN"]
    assert (await client.data(PAUSE, {"id": seal}, as_="admin"))["pauseJob"]["enabled"] is False
    rescheduled = await client.data(UPDATE, {"id": seal, "input": {"cron": "*/5 * * * *"}}, as_="admin")
    assert rescheduled["updateJob"]["cron"] == "*/5 * * * *"
    assert [e.outcome for e in await events(db, "deleteJob")] == ["forbidden"]
    still = (await client.data(JOB, {"id": seal}, as_="admin"))["job"]
    assert still["system"] and still["name"] == "audit.seal_pending"


async def test_ids_of_other_kinds_are_not_found(client: GraphQLClient) -> None:
    from core.ids import encode_id

    for query, variables in ((JOB, {"id": encode_id("Patient", 1)}), (RUN_NOW, {"id": encode_id("Job", 99999)})):
        assert error_codes(await client.run(query, variables, as_="admin")) == ["NOT_FOUND"]


ADMIN_ONLY = {
    "query": {"jobTargets", "jobs", "job", "jobRuns", "serverStatus", "serviceStats", "cacheStats", "userStats"},
    "mutation": {"createJob", "updateJob", "pauseJob", "resumeJob", "runJobNow", "deleteJob", "clearCache"},
}
SESSIONS = {"query": {"onlineSessions"}, "mutation": {"forceLogout"}}
ROOTS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


async def test_each_roles_schema_holds_the_operations_its_policy_grants(client: GraphQLClient) -> None:
    """Admin-only by default; department admins the sessions of their departments; nobody else any of it."""
    for who, granted in (
        ("admin", {kind: ADMIN_ONLY[kind] | SESSIONS[kind] for kind in ADMIN_ONLY}),
        ("deptadmin", SESSIONS),
        ("chief", {"query": set(), "mutation": set()}),
        ("physician", {"query": set(), "mutation": set()}),
        ("patient", {"query": set(), "mutation": set()}),
    ):
        schema = (await client.data(ROOTS, as_=who))["__schema"]
        for kind in ("query", "mutation"):
            names = {field["name"] for field in (schema[f"{kind}Type"] or {"fields": []})["fields"]}
            assert names & (ADMIN_ONLY[kind] | SESSIONS[kind]) == granted[kind], (who, kind)
