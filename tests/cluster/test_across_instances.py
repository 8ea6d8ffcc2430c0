"""Two instances on two Galera nodes behave as one (issue 19): the last place goes to one of two bookings sent at
once through A (node 1) and B (node 2), and the audit chain verifies afterwards; a permission granted through A
reshapes the schema on B within a second; logout and forced logout on A end the token on B; a message sent
through A reaches a subscription held on B; failed logins spread over A and B lock the account; a job scheduled
every minute fires once per minute although both instances run the scheduler."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from core.db import Database
from core.timeutil import utcnow
from deploy.cluster import DEMO_PASSWORD, PYTHON, ROOT, Cluster, app_environment
from models.appointment import Appointment, Schedule
from models.operations import JobRun, ScheduledJob
from tests.appointment_helpers import SCHEDULE, gid, make_schedule
from tests.cluster.conftest import LOGIN, Api, codes
from tests.test_appointment_concurrency import _patients

pytestmark = pytest.mark.cluster
FIELDS = "{ __schema { queryType { fields { name } } } }"
GRANT = 'mutation { grantPermission(roleKey: "physician", object: "Query.users", action: "read") { key } }'
ME = "{ me { id username } }"
SESSIONS = "query ($s: String) { onlineSessions(filter: {search: $s}) { edges { node { id userName } } } }"
FORCE = 'mutation ($id: ID!) { forceLogout(sessionId: $id, reason: "cluster test") { id } }'
SUBSCRIBE = "subscription ($c: ID!) { messageAdded(conversationId: $c) { id text senderName } }"
START_HASH = "00542583198bc192310c086123a27fb4496e34120fe373b0d8841cbdc8e1bbe0"  # the mini-program's StartConsultation
SEND_HASH = "92a55c49f9af24b30dc358b6bb771e9d5a4e0c0432b651bfcd9d39660617eece"  # and its SendMessage
CREATE_JOB = """mutation ($name: String!) { createJob(input: {name: $name, target: "audit.seal_pending",
  cron: "* * * * *"}) { id } }"""


@pytest.fixture
async def apis(cluster: Cluster) -> AsyncIterator[tuple[Api, Api]]:
    a, b = Api(cluster.apps[0].url), Api(cluster.apps[1].url)
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture
async def node_db(cluster: Cluster) -> AsyncIterator[Database]:
    db = Database(cluster.nodes[2].url, pool_size=2)  # the third node: neither instance writes through it
    yield db
    await db.dispose()


async def test_a_job_scheduled_every_minute_is_created(apis: tuple[Api, Api], cluster: Cluster) -> None:
    """Set up first; test_the_minute_job_fired_once_per_minute (the last of the fault tests) counts its firings."""
    a, _b = apis
    await a.data(CREATE_JOB, {"name": "cluster-minute"}, token=await a.token("admin"))
    cluster.marks["minute_job_since"] = utcnow()


async def test_the_last_place_goes_to_one_of_two_instances(
    apis: tuple[Api, Api], cluster: Cluster, node_db: Database
) -> None:
    a, b = apis
    tokens = (await a.token("admin"), await b.token("admin"))
    for round_ in range(5):  # five sessions, each with one place, each raced by A and B at once
        schedule = await make_schedule(node_db, capacity=1, days_ahead=20 + round_)
        patients = await _patients(node_db, 2)
        await asyncio.sleep(0.5)  # replicated to nodes 1 and 2
        bodies = [
            {"input": {"patientId": gid("Patient", p), "scheduleId": gid("Schedule", schedule)}} for p in patients
        ]
        results = await asyncio.gather(a.run(SCHEDULE, bodies[0], tokens[0]), b.run(SCHEDULE, bodies[1], tokens[1]))
        won = [result for result in results if "errors" not in result]
        assert len(won) == 1, results
        assert [code for result in results for code in codes(result)] == ["CONFLICT"]
        await asyncio.sleep(0.5)
        async with node_db.session() as session:
            stored = (await session.execute(select(Appointment).where(Appointment.schedule_id == schedule))).all()
            booked = (await session.execute(select(Schedule.booked).where(Schedule.id == schedule))).scalar_one()
        assert len(stored) == 1 and booked == 1


def test_the_audit_chain_verifies_on_every_node(cluster: Cluster) -> None:
    for node in cluster.nodes:
        env = app_environment(node.url, cluster.redis.url)
        done = subprocess.run(
            [PYTHON, "server.py", "verify-audit"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        print(f"[cluster] verify-audit on {node.name}: {done.stdout.strip()[-200:]}")
        assert done.returncode == 0, done.stdout + done.stderr


async def _fields(api: Api, token: str) -> set[str]:
    data = await api.data(FIELDS, token=token)
    return {field["name"] for field in data["__schema"]["queryType"]["fields"]}


async def test_a_grant_through_a_reshapes_the_schema_on_b_within_a_second(apis: tuple[Api, Api]) -> None:
    a, b = apis
    physician_on_b = await b.token("physician")
    assert "users" not in await _fields(b, physician_on_b)
    await a.data(GRANT, token=await a.token("admin"))
    granted = time.monotonic()
    while "users" not in await _fields(b, physician_on_b):
        assert time.monotonic() - granted < 1.0, "the grant did not reach B within a second"
        await asyncio.sleep(0.05)
    print(f"[cluster] grant on A seen on B after {time.monotonic() - granted:.3f} s")


async def test_logout_and_forced_logout_on_a_end_the_token_on_b(apis: tuple[Api, Api]) -> None:
    a, b = apis
    token = await a.token("chief")
    assert "errors" not in await b.run(ME, token=token)
    assert (await a.data("mutation { logout }", token=token))["logout"] is True
    assert codes(await b.run(ME, token=token)) == ["UNAUTHENTICATED"]

    victim = await b.token("physician2")
    assert "errors" not in await b.run(ME, token=victim)
    admin = await a.token("admin")
    sessions = (await a.data(SESSIONS, {"s": "physician2"}, token=admin))["onlineSessions"]["edges"]
    for edge in sessions:
        await a.data(FORCE, {"id": edge["node"]["id"]}, token=admin)
    assert codes(await b.run(ME, token=victim)) == ["UNAUTHENTICATED"]


async def _trusted(api: Api, digest: str, variables: dict[str, Any], token: str) -> Any:
    body = {"variables": variables, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    response = await api.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    result = response.json()
    assert "errors" not in result, result
    return result["data"]


async def test_a_message_sent_through_a_reaches_a_subscription_on_b(apis: tuple[Api, Api], cluster: Cluster) -> None:
    a, b = apis
    patient = await a.token("patient")
    conversation = (await _trusted(a, START_HASH, {}, patient))["startConsultation"]["id"]
    physician = await b.token("physician")
    ws_url = cluster.apps[1].url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {physician}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        subscribe = {"query": SUBSCRIBE, "variables": {"c": conversation}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        await asyncio.sleep(0.5)  # registered on B (and its Redis channel) before A sends
        sent = time.monotonic()
        await _trusted(a, SEND_HASH, {"conversationId": conversation, "text": "从A发出"}, patient)
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        print(f"[cluster] message sent on A reached B's subscription after {time.monotonic() - sent:.3f} s")
    assert message["type"] == "next", message
    assert message["payload"]["data"]["messageAdded"]["text"] == "从A发出"


async def test_failed_logins_spread_over_a_and_b_lock_the_account(apis: tuple[Api, Api]) -> None:
    a, b = apis
    for attempt in range(5):
        api = (a, b)[attempt % 2]
        assert codes(await api.run(*_login("deptadmin", "wrong password!"))) == ["UNAUTHENTICATED"]
    for api in (a, b):
        locked = await api.run(*_login("deptadmin", None))
        assert codes(locked) == ["RATE_LIMITED"], locked


def _login(username: str, password: str | None) -> tuple[str, dict[str, Any]]:
    return LOGIN, {"u": username, "p": password or DEMO_PASSWORD}


async def minute_job_firings(db: Database, since: Any) -> tuple[int, int, list[str]]:
    """The cluster-minute job's runs since `since`: (runs, distinct firings, instances that ran them)."""
    async with db.session() as session:
        job = (await session.execute(select(ScheduledJob.id).where(ScheduledJob.name == "cluster-minute"))).scalar_one()
        rows = (
            await session.execute(
                select(JobRun.scheduled_for, JobRun.instance).where(
                    JobRun.job_id == job, JobRun.scheduled_for >= since - timedelta(seconds=1)
                )
            )
        ).all()
        distinct = (
            await session.execute(select(func.count(func.distinct(JobRun.scheduled_for))).where(JobRun.job_id == job))
        ).scalar_one()
    return len(rows), int(distinct), sorted({row.instance for row in rows})
