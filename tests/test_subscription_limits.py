"""Open websockets per account are bounded (MAX_SOCKETS_PER_USER): one more is refused, and closing one frees
its place."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import GraphQLClient
from tests.test_subscription_messages import closed_code, live, open_socket, receive

__all__ = ["live"]


async def receive_or_close(ws: Any) -> str:
    try:
        return str((await receive(ws))["type"])
    except ConnectionClosed:
        return "closed"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_sockets_per_user": 2}


async def test_one_socket_too_many_is_refused_until_one_closes(live: str, client: GraphQLClient) -> None:
    token = await client.token("physician")
    first, second = await open_socket(live, token), await open_socket(live, token)
    for ws in (first, second):
        assert (await receive(ws))["type"] == "connection_ack"
    third = await open_socket(live, token)
    assert await closed_code(third) == 4403  # graphql-transport-ws: the connection_init was refused
    other = await open_socket(live, await client.token("chief"))  # another account is not affected
    assert (await receive(other))["type"] == "connection_ack"
    await first.close()
    for _ in range(40):  # the server frees the place once it has seen the close
        again = await open_socket(live, token)
        reply = await receive_or_close(again)
        if reply == "connection_ack":
            break
        await asyncio.sleep(0.05)
    assert reply == "connection_ack"
    for ws in (second, other, again):
        await ws.close()


async def test_errors_on_the_websocket_carry_their_code(live: str, client: GraphQLClient) -> None:
    ws = await open_socket(live, await client.token("physician"))
    assert (await receive(ws))["type"] == "connection_ack"
    bad = {"query": 'subscription { messageAdded(conversationId: "x") { nothingSuch } }'}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": bad}))
    reply = await receive(ws)
    assert reply["type"] == "error"
    assert reply["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    unknown = {"query": 'subscription { messageAdded(conversationId: "Q29udmVyc2F0aW9uOjk5OTk") { id } }'}
    await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": unknown}))
    reply = await receive(ws)
    assert reply["type"] in ("error", "next")
    errors = reply["payload"] if reply["type"] == "error" else reply["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await ws.close()


async def test_logging_out_closes_the_sessions_sockets_at_once(
    live: str, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schema.engine.websocket import SubscriptionView

    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 3600.0)  # no periodic check would catch it
    login = await client.login("physician")
    ws = await open_socket(live, login["accessToken"])
    assert (await receive(ws))["type"] == "connection_ack"
    await client.data("mutation { logout }", token=login["accessToken"])
    assert await closed_code(ws) == 4403
