"""Two app instances on one database and one Redis behave as one: a permission granted on instance A
reshapes the role's schema on instance B within moments, with no restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.conftest import TEST_REDIS_URL, GraphQLClient, error_codes, flush_test_redis, make_settings, reset_database

FIELDS = "{ __schema { queryType { fields { name } } } }"
GRANT = 'mutation { grantPermission(roleKey: "physician", object: "Query.users", action: "read") { key } }'
REVOKE = 'mutation { revokePermission(roleKey: "physician", object: "Query.users", action: "read") { key } }'


@pytest.fixture
async def instances(database_url: str) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    from server import create_app

    await reset_database(database_url)
    await flush_test_redis(TEST_REDIS_URL)
    async with AsyncExitStack() as stack:
        clients = []
        for port in (50001, 50002):
            app = create_app(make_settings(database_url, redis_url=TEST_REDIS_URL))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", port))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            clients.append(GraphQLClient(http, app))
        yield clients[0], clients[1]


async def query_fields(client: GraphQLClient, token: str) -> set[str]:
    data = await client.data(FIELDS, token=token)
    return {field["name"] for field in data["__schema"]["queryType"]["fields"]}


async def wait_for(client: GraphQLClient, token: str, present: bool, within: float = 3.0) -> float:
    """Seconds until `users` is (or is not) in the physician's schema on this instance."""
    start = time.monotonic()
    while True:
        if ("users" in await query_fields(client, token)) is present:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"`users` {'never appeared' if present else 'never went away'} within {within}s")
        await asyncio.sleep(0.05)


async def test_a_grant_on_one_instance_reaches_the_other(instances: tuple[GraphQLClient, GraphQLClient]) -> None:
    a, b = instances
    assert a.services.notifier.instance != b.services.notifier.instance
    physician_on_b = await b.token("physician")
    assert "users" not in await query_fields(b, physician_on_b)
    assert error_codes(await b.run("{ users { totalCount } }", token=physician_on_b)) == ["GRAPHQL_VALIDATION_FAILED"]
    version_b = b.services.policy.version

    await a.data(GRANT, as_="admin")
    assert "users" in await query_fields(a, await a.token("physician"))  # at once on A
    await wait_for(b, physician_on_b, present=True)
    assert b.services.policy.version > version_b
    data = await b.data("{ users { totalCount } }", token=physician_on_b)
    assert data["users"]["totalCount"] == 1  # the physician's own scope (SELF) reaches no department: only themselves

    await a.data(REVOKE, as_="admin")
    await wait_for(b, physician_on_b, present=False)

    # And the other way round: B's change reaches A.
    await b.data(GRANT, as_="admin")
    await wait_for(a, await a.token("physician"), present=True)


async def test_account_changes_on_one_instance_hold_on_the_other(
    instances: tuple[GraphQLClient, GraphQLClient],
) -> None:
    """Sessions and roles live in the database: disabling on A locks the user out of B at once."""
    a, b = instances
    token_on_b = await b.token("physician")
    users = await a.data('{ users(filter: {search: "physician"}) { edges { node { id username } } } }', as_="admin")
    physician_id = next(e["node"]["id"] for e in users["users"]["edges"] if e["node"]["username"] == "physician")
    await a.data("mutation ($id: ID!) { disableUser(id: $id) { status } }", {"id": physician_id}, as_="admin")
    response = await b.post("{ me { id } }", token=token_on_b)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_a_lost_notice_connection_is_remade(instances: tuple[GraphQLClient, GraphQLClient]) -> None:
    """Redis drops instance B's subscription (a restart, a network cut): B reconnects, and reloads the
    policy because notices sent while it was away are lost, so a grant made meanwhile still reaches it."""
    from redis.asyncio import Redis

    a, b = instances
    physician_on_b = await b.token("physician")
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        name = f"followup-{b.services.notifier.instance}"
        killed = [c["id"] for c in await redis.client_list() if c.get("name") == name and "subscribe" in c["cmd"]]
        assert killed, "instance B holds no named subscription"
        for client_id in killed:
            await redis.client_kill_filter(_id=client_id)
    finally:
        await redis.aclose()
    await a.data(GRANT, as_="admin")  # while B may still be cut off
    await wait_for(b, physician_on_b, present=True)
    await a.data(REVOKE, as_="admin")  # and later notices arrive as before
    await wait_for(b, physician_on_b, present=False)


async def test_a_failed_broadcast_does_not_fail_the_committed_grant(
    instances: tuple[GraphQLClient, GraphQLClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    a, _b = instances

    async def unreachable(*_args: object) -> None:
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(a.services.notifier._redis, "publish", unreachable)
    data = await a.data(GRANT, as_="admin")
    assert data["grantPermission"]["key"] == "physician"
    assert "users" in await query_fields(a, await a.token("physician"))  # applied here at once
