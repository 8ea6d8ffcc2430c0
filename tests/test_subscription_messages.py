"""`messageAdded` over a real websocket (uvicorn on a loopback port, the `websockets` client)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy import delete, select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.db import Database
from models.role import Role, UserRole
from models.user import User
from schema.engine.websocket import SubscriptionView
from tests.conftest import TEST_REDIS_URL, GraphQLClient
from tests.test_consultation_messages import SEND, start

SUBSCRIBE = "subscription ($c: ID!) { messageAdded(conversationId: $c) { id text kind senderName } }"
LOGOUT = "mutation { logout }"


@pytest.fixture
async def live(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The app (lifespan already running) served by uvicorn on a free loopback port, in this event loop."""
    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    return message


async def open_socket(url: str, token: str | None) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def subscribe(url: str, token: str, conversation: str) -> ClientConnection:
    ws = await open_socket(url, token)
    assert (await receive(ws))["type"] == "connection_ack"
    await ws.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"c": conversation}}})
    )
    await asyncio.sleep(0.2)  # the subscription is registered before anything is sent
    return ws


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_both_people_and_a_manager_receive_messages(live: str, client: GraphQLClient) -> None:
    conversation = await start(client)
    sockets = {who: await subscribe(live, await client.token(who), conversation) for who in ("physician", "chief")}
    await client.register_trusted(SUBSCRIBE)  # the patient's sessions run only the mini-program's documents
    patient_ws = await subscribe(live, await client.token("patient"), conversation)

    await client.data(SEND, {"c": conversation, "t": "伤口有点痛"}, as_="patient")
    for ws in (*sockets.values(), patient_ws):
        message = await receive(ws)
        assert message["type"] == "next" and message["id"] == "1"
        assert message["payload"]["data"]["messageAdded"]["text"] == "伤口有点痛"
        assert message["payload"]["data"]["messageAdded"]["senderName"].startswith("赵患者")
    await client.data(SEND, {"c": conversation, "t": "明天来复查"}, as_="physician")
    assert (await receive(patient_ws))["payload"]["data"]["messageAdded"]["text"] == "明天来复查"
    for ws in (*sockets.values(), patient_ws):
        await ws.close()


async def test_outsiders_and_bad_tokens_are_refused(live: str, client: GraphQLClient) -> None:
    conversation = await start(client)
    # physician2 is neither in the conversation nor a manager of its department.
    ws = await subscribe(live, await client.token("physician2"), conversation)
    message = await receive(ws)
    assert message["type"] in ("error", "next")
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await ws.close()

    assert await closed_code(await open_socket(live, None)) == 4403
    assert await closed_code(await open_socket(live, "not-a-token")) == 4403
    # No subscribing before connection_init.
    ws = await connect(live, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {}}}))
    assert await closed_code(ws) == 4401
    # Queries and mutations stay on HTTP.
    ws = await open_socket(live, await client.token("physician"))
    assert (await receive(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": "{ me { id } }"}}))
    refused = await receive(ws)
    assert refused["type"] == "error"
    await ws.close()


async def test_socket_closes_when_the_session_ends(live: str, client: GraphQLClient) -> None:
    conversation = await start(client)
    token = (await client.login("physician"))["accessToken"]
    ws = await subscribe(live, token, conversation)
    await client.data(LOGOUT, token=token)
    assert await closed_code(ws) == 4403


async def test_socket_closes_when_the_role_is_revoked(live: str, client: GraphQLClient, db: Database) -> None:
    conversation = await start(client)
    ws = await subscribe(live, await client.token("physician"), conversation)
    async with db.transaction() as session:
        physician = (await session.execute(select(User.id).where(User.username == "physician"))).scalar_one()
        role = (await session.execute(select(Role.id).where(Role.key == "physician"))).scalar_one()
        await session.execute(delete(UserRole).where(UserRole.user_id == physician, UserRole.role_id == role))
    assert await closed_code(ws) == 4403


async def test_fan_out_through_redis_reaches_another_instance() -> None:
    """Two brokers (two app instances) sharing Redis: a message published on one reaches the other."""
    from resolvers.consultation import MessageBroker

    url = TEST_REDIS_URL
    try:
        from redis.asyncio import Redis

        probe = Redis.from_url(url)
        await probe.ping()
        await probe.aclose()
    except Exception:
        pytest.skip("no Redis to test against")
    sender, receiver = MessageBroker(url), MessageBroker(url)
    try:
        async with receiver.listen(42) as queue:
            await sender.publish(42, 7)
            assert await asyncio.wait_for(queue.get(), timeout=5) == 7
            await sender.publish(43, 8)  # another conversation: not delivered here
            await asyncio.sleep(0.2)
            assert queue.empty()
    finally:
        await sender.stop()
        await receiver.stop()


async def test_the_mini_program_subscribes_with_its_trusted_document(
    live: str, client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mini-program runs registered documents only: over the socket too, by the document's exact text."""
    import resolvers.auth.wechat
    from clients.build_manifest import HERE, build, document_of
    from schema.engine.persisted import store_documents

    manifest = build(HERE / "mini-program")
    await store_documents(db, "mini-program", manifest)

    async def fake_exchange(_settings: Any, code: str) -> str:
        return "demo-patient-openid"

    monkeypatch.setattr(resolvers.auth.wechat, "exchange_code", fake_exchange)
    login = next(doc for doc in manifest.values() if doc.startswith("mutation WechatLogin"))
    token = (await client.data(login, {"code": "wx-code"}))["wechatLogin"]["accessToken"]
    conversation = await start(client)
    document = document_of(HERE / "mini-program" / "messageAdded.graphql")
    assert document in manifest.values()

    ws = await open_socket(live, token)
    assert (await receive(ws))["type"] == "connection_ack"
    payload = {"query": document, "variables": {"conversationId": conversation}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    # a document of its own making is refused
    await ws.send(
        json.dumps({"id": "2", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"c": conversation}}})
    )
    refused = await receive(ws)
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert refused["id"] == "2" and errors[0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    await client.data(SEND, {"c": conversation, "t": "明天上午来换药"}, as_="physician")
    message = await receive(ws)
    assert message["id"] == "1" and message["type"] == "next"
    added = message["payload"]["data"]["messageAdded"]
    assert added["text"] == "明天上午来换药" and added["kind"] == "USER" and added["senderName"]
    await ws.close()


@pytest.mark.parametrize("settings_overrides", [{"database_pool_size": 2, "max_sockets_per_user": 100}])
async def test_a_wide_fan_out_takes_turns_at_the_database(
    live: str, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty sockets on one conversation: every socket gets the message, and no more deliveries load it at once
    than half the pool holds (database_pool_size). Unbounded, a fan-out to 1,000 sockets asked the pool for 1,000
    connections and the deliveries left waiting past the pool's timeout ended their subscriptions with INTERNAL."""
    import resolvers.consultation as consultation

    loading, peak = 0, 0
    deliver = consultation.delivered_message

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal loading, peak
        loading += 1
        peak = max(peak, loading)
        try:
            await asyncio.sleep(0.01)  # a slow database: deliveries would pile up here
            return await deliver(*args, **kwargs)
        finally:
            loading -= 1

    monkeypatch.setattr(consultation, "delivered_message", counted)
    conversation = await start(client)
    token = await client.token("chief")
    sockets = [await subscribe(live, token, conversation) for _ in range(40)]
    await client.data(SEND, {"c": conversation, "t": "术后第三天复查"}, as_="patient")
    frames = await asyncio.gather(*(asyncio.wait_for(ws.recv(), timeout=60) for ws in sockets))  # a loaded machine
    received = [json.loads(frame) for frame in frames]
    assert [message["type"] for message in received] == ["next"] * 40, received
    assert {message["payload"]["data"]["messageAdded"]["text"] for message in received} == {"术后第三天复查"}
    assert 1 <= peak <= 2
    for ws in sockets:
        await ws.close()


@pytest.mark.parametrize("settings_overrides", [{"database_pool_size": 2, "max_sockets_per_user": 100}])
async def test_sockets_of_one_session_share_their_session_checks(
    live: str, client: GraphQLClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty sockets of one session opened together: their watchers and deliveries check the session through
    the process's shared look-ups (at most half the pool at once, one look-up for the callers that asked before it
    began), every socket still gets the message, and a session ended is still noticed by every socket."""
    import resolvers.data.principal as principal_module
    from schema.engine import websocket

    running, peak = 0, 0
    look_up = principal_module.principal_from_token

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.01)  # a slow database
            return await look_up(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(websocket, "principal_from_token", counted)
    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 600)  # the deliveries' own checks are counted here
    view = next(route.app for route in app.routes if hasattr(getattr(route, "app", None), "checks"))
    conversation = await start(client)
    token = await client.token("chief")
    sockets = [await subscribe(live, token, conversation) for _ in range(40)]
    before = view.checks.lookups
    await client.data(SEND, {"c": conversation, "t": "明早空腹"}, as_="patient")
    frames = await asyncio.gather(*(asyncio.wait_for(ws.recv(), timeout=60) for ws in sockets))
    assert [json.loads(frame)["type"] for frame in frames] == ["next"] * 40
    assert view.checks.lookups - before < 40  # the deliveries' checks were shared
    assert 1 <= peak <= 1  # half of a pool of 2

    assert (await client.data("mutation { logout }", token=token))["logout"] is True
    await client.data(SEND, {"c": conversation, "t": "不该送到"}, as_="patient")

    async def until_closed(ws: ClientConnection) -> tuple[list[str], int | None]:
        frames: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(str(await asyncio.wait_for(ws.recv(), timeout=60)))
        return frames, closed.value.rcvd.code if closed.value.rcvd else None

    ended = await asyncio.gather(*(until_closed(ws) for ws in sockets))
    assert all(code == 4403 and not any("不该送到" in frame for frame in frames) for frames, code in ended), ended[:2]
