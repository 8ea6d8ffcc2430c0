"""Online sessions: admins see everyone's, a department admin their departments' staff's only, physicians none;
forceLogout ends a session at once on every instance (its next request is UNAUTHENTICATED, its websockets
close with 4403 without waiting for their periodic check), and is audited."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import uvicorn

from core.db import Database
from schema.engine.websocket import SubscriptionView
from server import create_app
from tests.conftest import (
    DEMO_PASSWORD,
    LOGIN,
    TEST_REDIS_URL,
    GraphQLClient,
    error_codes,
    flush_test_redis,
    make_settings,
    reset_database,
)
from tests.operations_helpers import events
from tests.test_consultation_messages import start
from tests.test_subscription_messages import closed_code, subscribe

SESSIONS = """query ($filter: OnlineSessionFilter) { onlineSessions(first: 100, filter: $filter) {
  totalCount edges { node { id userId userName roles client ip userAgent loggedInAt lastSeenAt expiresAt endedAt } } } }"""
FORCE = "mutation ($id: ID!, $reason: String!) { forceLogout(sessionId: $id, reason: $reason) { id endedAt userName } }"
ME = "{ me { id username } }"
ASSIGN = "mutation ($id: ID!, $keys: [String!]!) { assignRoles(userId: $id, roleKeys: $keys) { id } }"


async def sessions_seen(api: GraphQLClient, who: str, **filters: Any) -> list[dict[str, Any]]:
    data = await api.data(SESSIONS, {"filter": filters or None}, as_=who)
    return [edge["node"] for edge in data["onlineSessions"]["edges"]]


async def session_of(client: GraphQLClient, username: str, token: str | None = None) -> str:
    """The id of the session behind `username`'s token (logging in if need be), as an admin sees it."""
    me = (await client.data(ME, token=token) if token else await client.data(ME, as_=username))["me"]
    [found] = await sessions_seen(client, "admin", userId=me["id"])
    return str(found["id"])


async def test_who_sees_whose_sessions(client: GraphQLClient) -> None:
    for who in ("admin", "deptadmin", "chief", "physician", "physician2", "patient"):
        await client.token(who)
    everyone = {node["userName"].split()[0]: node for node in await sessions_seen(client, "admin")}
    assert len(everyone) == 6
    physician = next(node for node in everyone.values() if node["roles"] == ["physician"])
    assert physician["client"] == "CONSOLE" and physician["ip"] == "127.0.0.1" and physician["endedAt"] is None
    department = {node["roles"][0] for node in await sessions_seen(client, "deptadmin")}
    # Colorectal Surgery's staff (and the department admin's own): not Gastroenterology's, the root's or a patient's
    assert department == {"dept_admin", "chief_physician", "physician"}
    assert len(await sessions_seen(client, "deptadmin")) == 3
    for who in ("chief", "physician", "patient"):
        assert set(error_codes(await client.run(SESSIONS, as_=who))) == {"GRAPHQL_VALIDATION_FAILED"}, who
    outsider = (await client.data(ME, as_="physician2"))["me"]["id"]
    named = await client.run(SESSIONS, {"filter": {"userId": outsider}}, as_="deptadmin")
    assert error_codes(named) == ["NOT_FOUND"]  # a user out of reach, named in a filter
    assert len(await sessions_seen(client, "admin", userId=outsider)) == 1
    searched = await sessions_seen(client, "admin", search="physician2")
    assert [node["roles"] for node in searched] == [["physician"]] and len(searched) == 1


async def test_a_department_admin_ends_their_staffs_sessions_only(client: GraphQLClient, db: Database) -> None:
    physician_token = await client.token("physician")
    target = await session_of(client, "physician", physician_token)
    outside = [await session_of(client, who) for who in ("physician2", "patient", "admin")]

    ended = (await client.data(FORCE, {"id": target, "reason": "设备遗失 lost laptop"}, as_="deptadmin"))["forceLogout"]
    assert ended["id"] == target and ended["endedAt"] is not None
    response = await client.post(ME, token=physician_token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "SESSION_ENDED"}
    assert error_codes(await client.run(FORCE, {"id": target, "reason": "again"}, as_="deptadmin")) == ["CONFLICT"]
    for session_id in outside:  # out of the department admin's reach: as if it did not exist
        assert error_codes(await client.run(FORCE, {"id": session_id, "reason": "no"}, as_="deptadmin")) == [
            "NOT_FOUND"
        ]
    for bad in ("not-an-id", target[:-2]):
        assert error_codes(await client.run(FORCE, {"id": bad, "reason": "no"}, as_="deptadmin")) == ["NOT_FOUND"]
    assert error_codes(await client.run(FORCE, {"id": target, "reason": ""}, as_="admin")) == ["BAD_USER_INPUT"]
    for who in ("chief", "physician2"):
        result = await client.run(FORCE, {"id": outside[0], "reason": "no"}, as_=who)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, who
    for session_id in outside:  # the last one is the admin's own
        assert (await client.data(FORCE, {"id": session_id, "reason": "audit"}, as_="admin"))["forceLogout"]["endedAt"]
    client.forget("admin")
    recorded = [event for event in await events(db, "forceLogout") if event.outcome == "success"]
    assert recorded[0].entity_id == _key(target)
    assert recorded[0].detail is not None and recorded[0].detail["reason"] == "设备遗失 lost laptop"
    assert len(recorded) == 4
    assert [event.outcome for event in await events(db, "forceLogout")].count("not_found") == 5


async def test_each_session_says_its_client(client: GraphQLClient) -> None:
    login = {"query": LOGIN, "variables": {"u": "chief", "p": DEMO_PASSWORD}}
    response = await client.http.post("/graphql", json=login, headers={"X-Followup-Client": "graphiql"})  # the page's
    assert response.status_code == 200 and "errors" not in response.json()
    await client.token("physician")
    clients = {node["roles"][0]: node["client"] for node in await sessions_seen(client, "admin")}
    assert clients == {"chief_physician": "GRAPHIQL", "physician": "CONSOLE", "admin": "CONSOLE"}
    graphiql = await sessions_seen(client, "admin", client="GRAPHIQL")
    assert [node["roles"] for node in graphiql] == [["chief_physician"]]


def _key(session_id: str) -> str:
    import base64

    return base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4)).decode().split(":", 1)[1]


async def test_no_ending_the_session_of_an_account_above_you(client: GraphQLClient) -> None:
    me = (await client.data(ME, as_="chief"))["me"]
    await client.data(ASSIGN, {"id": me["id"], "keys": ["chief_physician", "admin"]}, as_="admin")
    target = await session_of(client, "chief")  # roles are read per request: this session now carries admin
    assert error_codes(await client.run(FORCE, {"id": target, "reason": "no"}, as_="deptadmin")) == ["FORBIDDEN"]
    assert (await client.data(FORCE, {"id": target, "reason": "yes"}, as_="admin"))["forceLogout"]["endedAt"]


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    """Instances A and B sharing the database and Redis (the change notices)."""
    await reset_database(database_url)
    await flush_test_redis(TEST_REDIS_URL)
    async with AsyncExitStack() as stack:
        clients = []
        for port in (50021, 50022):
            app = create_app(make_settings(database_url, redis_url=TEST_REDIS_URL))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", port))
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            clients.append(GraphQLClient(http, app))
        yield clients[0], clients[1]


@pytest.fixture
async def served_b(pair: tuple[GraphQLClient, GraphQLClient], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Instance B served by uvicorn for websockets; their periodic check is an hour away, so only the notice can
    close a socket within the test."""
    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 3600.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(pair[1].app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task


async def test_force_logout_on_one_instance_ends_the_session_on_the_other(
    pair: tuple[GraphQLClient, GraphQLClient], served_b: str
) -> None:
    a, b = pair
    token = await b.token("physician")
    conversation = await start(b)
    ws = await subscribe(served_b, token, conversation)
    other = await subscribe(served_b, await b.token("physician2"), conversation)  # a session not ended
    target = await session_of(a, "physician", token)

    await a.data(FORCE, {"id": target, "reason": "account compromised"}, as_="admin")
    assert await closed_code(ws) == 4403  # within the receive timeout, an hour before the periodic check
    response = await b.post(ME, token=token)
    assert response.status_code == 401 and error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert (await b.data(ME, token=await b.token("physician2")))["me"]["username"] == "physician2"
    await other.close()
