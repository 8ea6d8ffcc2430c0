"""Sessions verified a moment ago are trusted without the database (SESSION_CACHE_SECONDS), and every change to
sessions, accounts or roles still holds at once: on this instance, and on another one through the notices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import TEST_REDIS_URL, GraphQLClient, error_codes, flush_test_redis, make_settings, reset_database
from tests.test_cluster import query_fields

USERS = '{ users(filter: {search: "physician"}) { edges { node { id username } } } }'
ASSIGN = "mutation ($id: ID!, $keys: [String!]!) { assignRoles(userId: $id, roleKeys: $keys) { id } }"
ME = "{ me { id } }"


@pytest.fixture
async def instances(database_url: str) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    """Two instances on one database and one Redis that trust a checked session for 10 s: whatever holds at
    once on the other instance holds through the change notices, not the cache's expiry."""
    from server import create_app

    await reset_database(database_url)
    await flush_test_redis(TEST_REDIS_URL)
    async with AsyncExitStack() as stack:
        clients = []
        for port in (50011, 50012):
            app = create_app(make_settings(database_url, redis_url=TEST_REDIS_URL, session_cache_seconds=10))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", port))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            clients.append(GraphQLClient(http, app))
        yield clients[0], clients[1]


def _statements(client: GraphQLClient) -> list[str]:
    seen: list[str] = []
    db = client.services.db
    for engine in {db.engine, getattr(db, "read_engine", db.engine)}:
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(str(a[2])))
    return seen


async def _physician_id(client: GraphQLClient) -> Any:
    users = await client.data(USERS, as_="admin")
    return next(e["node"]["id"] for e in users["users"]["edges"] if e["node"]["username"] == "physician")


async def test_a_session_checked_a_moment_ago_is_not_looked_up_again(client: GraphQLClient) -> None:
    token = await client.token("physician")
    assert (await client.post("{ __typename }", token=token)).status_code == 200
    seen = _statements(client)
    assert (await client.post("{ __typename }", token=token)).status_code == 200
    assert not [s for s in seen if "auth_session" in s]


async def test_logout_holds_at_once_on_the_same_instance(client: GraphQLClient) -> None:
    token = await client.token("physician")
    assert (await client.post(ME, token=token)).status_code == 200  # cached now
    assert (await client.data("mutation { logout }", token=token))["logout"] is True
    response = await client.post(ME, token=token)
    assert response.status_code == 401 and error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_a_disabled_account_is_refused_on_the_other_instance_that_trusted_it(
    instances: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = instances
    token_on_b = await b.token("physician")
    assert (await b.post(ME, token=token_on_b)).status_code == 200  # B trusts the session now
    await a.data("mutation ($id: ID!) { disableUser(id: $id) { status } }", {"id": await _physician_id(a)}, as_="admin")
    response = await b.post(ME, token=token_on_b)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_roles_taken_away_on_one_instance_are_gone_on_the_other(
    instances: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = instances
    token_on_b = await b.token("physician")
    assert "patients" in await query_fields(b, token_on_b)  # the physician's schema, from B's trusted principal
    await a.data(ASSIGN, {"id": await _physician_id(a), "keys": []}, as_="admin")
    # the notice crosses Redis: moments, not the cache's 10 s
    await asyncio.sleep(0.2)
    assert "patients" not in await query_fields(b, token_on_b)
