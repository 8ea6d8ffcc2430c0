"""Monitoring: serverStatus, serviceStats (per operation, staff member and role; names only for documents the
server knows; exact under concurrent requests on two instances; kept across a restart), cacheStats and
clearCache (state such as rate limits and sessions refused), userStats, /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from core.db import Database
from core.ids import encode_id
from server import create_app
from tests.conftest import TEST_REDIS_URL_SPARE, GraphQLClient, error_codes, make_settings, reset_database
from tests.operations_helpers import events

STATUS = """{ serverStatus { version instance pid startedAt uptimeSeconds memoryBytes peakMemoryBytes cpuSeconds
  cpuPercent loopLagMs loopLagMaxMs databasePools { name inUse size idle waiting } databaseRoundTripMs
  redisConfigured redisRoundTripMs schedulerEnabled runsInProgressHere } }"""
STATS = """query ($group: ServiceStatsGroup!, $from: DateTime) { serviceStats(groupBy: $group, from: $from) {
  requests errors items { key userId userName requests errors errorsByCode { code count } meanMs p50Ms p95Ms p99Ms maxMs } } }"""
CACHES = "{ cacheStats { namespace where keys bytes hits misses hitRate clearable keptBecause } }"
CLEAR = "mutation ($ns: String!) { clearCache(namespace: $ns) }"
USERS = """query ($from: Date, $to: Date) { userStats(from: $from, to: $to) { from to accounts withoutRole boundPatients
  byRole { role accounts } days { day newStaff newPatientAccounts newPatientRecords activeUsers } } }"""
PAGE = "query PatientsPage { patients(first: 5) { totalCount } }"
ONE = "query OnePatient($id: ID!) { patient(id: $id) { name } }"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


async def persisted(
    client: GraphQLClient, document: str, who: str, variables: dict[str, Any] | None = None, *, register: bool = False
) -> dict[str, Any]:
    """Run a document as a persisted query (by hash; with its text the first time, which registers it)."""
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest(document)}}}
    if register:
        body["query"] = document
    if variables:
        body["variables"] = variables
    headers = {"Authorization": f"Bearer {await client.token(who)}"}
    response = await client.http.post("/graphql", json=body, headers=headers)
    result: dict[str, Any] = response.json()
    return result


async def stats(client: GraphQLClient, group: str, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    variables = {"group": group, "from": (since or datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    data = await client.data(STATS, variables, as_="admin")
    return {item["key"]: item for item in data["serviceStats"]["items"]}


async def test_server_status_for_admins_only(client: GraphQLClient) -> None:
    status = (await client.data(STATUS, as_="admin"))["serverStatus"]
    assert status["version"] == "0.1.0" and status["instance"] == client.services.notifier.instance
    assert status["uptimeSeconds"] >= 0 and status["cpuSeconds"] > 0 and status["peakMemoryBytes"] > 0
    assert status["memoryBytes"] is None or status["memoryBytes"] > 0
    assert {pool["name"] for pool in status["databasePools"]} == {"requests", "transactions"}
    requests_pool = next(pool for pool in status["databasePools"] if pool["name"] == "requests")
    assert requests_pool["inUse"] >= 1 and requests_pool["size"] >= requests_pool["inUse"]  # this request's own
    assert status["databaseRoundTripMs"] >= 0 and status["redisConfigured"] is False
    assert status["redisRoundTripMs"] is None and status["schedulerEnabled"] is False
    for who in ("deptadmin", "physician", "patient"):
        assert error_codes(await client.run(STATUS, as_=who)) == ["GRAPHQL_VALIDATION_FAILED"], who


async def test_service_stats_name_only_known_documents(client: GraphQLClient) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert "errors" not in await persisted(client, PAGE, "physician", register=True)
    for _ in range(2):
        assert "errors" not in await persisted(client, PAGE, "physician")
    missing = await persisted(client, ONE, "physician", {"id": encode_id("Patient", 999999)}, register=True)
    assert error_codes(missing) == ["NOT_FOUND"]
    await client.data("query Sneaky { me { id } }", as_="physician")  # a name nobody registered: `other`
    await client.data("query Sneaky2 { me { id } }", as_="chief")
    await client.data("{ me { id } }", as_="patient")  # (a trusted document: patients run no other)
    assert (await client.post("{ me { id } }", token="not-a-token")).status_code == 401

    operations = await stats(client, "OPERATION", since)
    assert operations["PatientsPage"]["requests"] == 3 and operations["PatientsPage"]["errors"] == 0
    assert operations["OnePatient"]["errorsByCode"] == [{"code": "NOT_FOUND", "count": 1}]
    assert "Sneaky" not in operations and "Sneaky2" not in operations
    other = operations["other"]
    assert {"code": "UNAUTHENTICATED", "count": 1} in other["errorsByCode"]
    page = operations["PatientsPage"]
    assert 0 <= page["p50Ms"] <= page["p95Ms"] <= page["p99Ms"] <= max(page["maxMs"], 5)

    staff = {item["userName"]: item for item in (await stats(client, "STAFF", since)).values()}
    physician = staff["陈医生 Chen (physician)"]
    assert physician["requests"] == 5 and physician["errors"] == 1 and physician["userId"] is not None
    assert "赵患者 Zhao (patient)" not in staff  # a patient's use is no staff member's
    roles = await stats(client, "ROLE", since)
    assert roles["physician"]["requests"] == 5 and roles["patient"]["requests"] == 1
    assert roles["anonymous"]["errorsByCode"] == [{"code": "UNAUTHENTICATED", "count": 1}]

    for who in ("deptadmin", "physician"):
        result = await client.run(STATS, {"group": "ROLE"}, as_=who)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, who
    backwards = {"group": "ROLE", "from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert error_codes(await client.run(STATS, backwards, as_="admin")) == ["BAD_USER_INPUT"]


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    """Two instances on one database, each flushing its figures every 20 ms while the requests run."""
    await reset_database(database_url)
    async with AsyncExitStack() as stack:
        clients = []
        for port in (50031, 50032):
            app = create_app(make_settings(database_url, figures_flush_seconds=0.02, rate_limit_enabled=False))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", port))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            clients.append(GraphQLClient(http, app))
        yield clients[0], clients[1]


async def test_figures_add_up_exactly_under_concurrent_requests_on_two_instances(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = pair
    since = datetime.now(UTC) - timedelta(minutes=5)
    for client in (a, b):  # register both documents on each instance (each keeps its own APQ store)
        await persisted(client, PAGE, "physician", register=True)
        await persisted(client, ONE, "chief", {"id": encode_id("Patient", 999999)}, register=True)
    work = []
    for index in range(60):
        client = (a, b)[index % 2]
        if index % 4 == 3:
            work.append(persisted(client, ONE, "chief", {"id": encode_id("Patient", 999999)}))
        else:
            work.append(persisted(client, PAGE, "physician"))
    results = await asyncio.gather(*work)
    assert sum(1 for result in results if error_codes(result) == ["NOT_FOUND"]) == 15
    await stats(b, "OPERATION", since)  # B's serviceStats writes what B still holds
    operations = await stats(a, "OPERATION", since)
    assert operations["PatientsPage"]["requests"] == 45 + 2 and operations["PatientsPage"]["errors"] == 0
    assert operations["OnePatient"]["requests"] == 15 + 2
    assert operations["OnePatient"]["errorsByCode"] == [{"code": "NOT_FOUND", "count": 17}]
    roles = await stats(a, "ROLE", since)
    assert roles["physician"]["requests"] == 47 and roles["chief_physician"]["requests"] == 17


async def test_figures_survive_a_restart(database_url: str) -> None:
    await reset_database(database_url)
    since = datetime.now(UTC) - timedelta(minutes=5)
    for round_ in (1, 2):
        app = create_app(make_settings(database_url, figures_flush_seconds=300))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50040))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                client = GraphQLClient(http, app)
                await persisted(client, PAGE, "physician", register=True)
                if round_ == 2:
                    operations = await stats(client, "OPERATION", since)
                    assert operations["PatientsPage"]["requests"] == 2  # one before the restart, one after
        # leaving the lifespan writes what is buffered (the flush interval never came)


async def test_cache_stats_and_what_may_be_cleared(client: GraphQLClient, db: Database) -> None:
    await client.data("{ me { id } }", as_="physician")
    caches = {item["namespace"]: item for item in (await client.data(CACHES, as_="admin"))["cacheStats"]}
    parsed = caches["parsedDocuments"]
    assert parsed["clearable"] and parsed["keys"] >= 2 and parsed["bytes"] > 0 and parsed["misses"] >= 2
    assert caches["reachClauses"]["hitRate"] is None or 0 <= caches["reachClauses"]["hitRate"] <= 1
    for kept in ("rateLimits", "verifiedTokens"):
        assert not caches[kept]["clearable"] and caches[kept]["keptBecause"]
        result = await client.run(CLEAR, {"ns": kept}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"]
        assert result["errors"][0]["extensions"]["reason"] == "NOT_CLEARABLE"
    assert error_codes(await client.run(CLEAR, {"ns": "everything"}, as_="admin")) == ["NOT_FOUND"]
    assert (await client.data(CLEAR, {"ns": "parsedDocuments"}, as_="admin"))["clearCache"] >= 2
    after = {item["namespace"]: item for item in (await client.data(CACHES, as_="admin"))["cacheStats"]}
    assert after["parsedDocuments"]["keys"] <= 2  # only what was parsed since (this query's own, the clear's)
    for who in ("deptadmin", "physician"):
        assert error_codes(await client.run(CACHES, as_=who)) == ["GRAPHQL_VALIDATION_FAILED"], who
        assert set(error_codes(await client.run(CLEAR, {"ns": "parsedDocuments"}, as_=who))) == {
            "GRAPHQL_VALIDATION_FAILED"
        }
    outcomes = sorted(event.outcome for event in await events(db, "clearCache"))
    assert outcomes.count("success") == 1 and outcomes.count("bad_user_input") == 2


@pytest.mark.parametrize("settings_overrides", [{"redis_url": TEST_REDIS_URL_SPARE}])
async def test_redis_namespaces(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    await persisted(client, "query RedisProbe { me { id } }", "physician", register=True)
    caches = {item["namespace"]: item for item in (await client.data(CACHES, as_="admin"))["cacheStats"]}
    assert caches["redis:persistedQueries"]["where"] == "redis" and caches["redis:persistedQueries"]["keys"] >= 1
    assert caches["redis:rateLimits"]["keys"] >= 1 and not caches["redis:rateLimits"]["clearable"]
    assert error_codes(await client.run(CLEAR, {"ns": "redis:rateLimits"}, as_="admin")) == ["BAD_USER_INPUT"]
    assert (await client.data(CLEAR, {"ns": "redis:persistedQueries"}, as_="admin"))["clearCache"] >= 1
    status = (await client.data(STATUS, as_="admin"))["serverStatus"]
    assert status["redisConfigured"] and status["redisRoundTripMs"] >= 0


async def test_user_stats(client: GraphQLClient) -> None:
    for who in ("physician", "chief"):
        await client.token(who)
    found = (await client.data(USERS, as_="admin"))["userStats"]
    assert {item["role"]: item["accounts"] for item in found["byRole"]} == {
        "admin": 1,
        "dept_admin": 1,
        "chief_physician": 1,
        "physician": 2,
        "patient": 1,
    }
    assert found["accounts"] == 6 and found["withoutRole"] == 0 and found["boundPatients"] == 1
    assert len(found["days"]) == 30 and found["to"] == found["days"][-1]["day"]
    today = found["days"][-1]
    # the demo, seeded today: five staff accounts, one patient account, twelve patient records
    assert (today["newStaff"], today["newPatientAccounts"], today["newPatientRecords"]) == (5, 1, 12)
    assert today["activeUsers"] == 3  # admin, physician, chief logged in
    assert error_codes(await client.run(USERS, {"from": "2026-01-02", "to": "2026-01-01"}, as_="admin")) == [
        "BAD_USER_INPUT"
    ]
    assert error_codes(await client.run(USERS, {"from": "2020-01-01", "to": "2026-01-01"}, as_="admin")) == [
        "BAD_USER_INPUT"
    ]
    for who in ("deptadmin", "physician"):
        assert set(error_codes(await client.run(USERS, as_=who))) == {"GRAPHQL_VALIDATION_FAILED"}, who


async def test_health_readiness_and_metrics(client: GraphQLClient, db: Database) -> None:
    assert (await client.http.get("/healthz")).text == "ok"
    ready = await client.http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "requests": "ok",
    }
    async with db.transaction() as session:
        head = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await session.execute(text("UPDATE alembic_version SET version_num = '0011_visit_grant'"))
    try:
        behind = await client.http.get("/readyz")
        assert behind.status_code == 503 and behind.json()["migrations"] == "behind"
    finally:
        async with db.transaction() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})

    await persisted(client, PAGE, "physician", register=True)
    token = await client.token("admin")
    metrics = (await client.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    assert 'followup_graphql_operations_total{code="none",operation="PatientsPage"} 1.0' in metrics
    assert 'followup_graphql_operation_seconds_count{operation="PatientsPage"} 1.0' in metrics
    assert 'followup_db_pool_connections{pool="requests",state="size"}' in metrics
    assert 'followup_cache_entries{namespace="parsedDocuments"}' in metrics
    assert "followup_job_executions" in metrics  # no jobs here (the scheduler is off): the family, empty
