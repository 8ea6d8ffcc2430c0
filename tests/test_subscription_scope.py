"""Subscriptions re-check scope, not only the session and roles, before every delivery, and what they deliver
to staff is recorded as a read of the patient's record (over a real websocket)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.organisation import Department
from models.user import User
from schema.engine.websocket import SubscriptionView
from tests.conftest import GraphQLClient
from tests.test_consultation_messages import start
from tests.test_subscription_messages import SEND, SUBSCRIBE, closed_code, live, receive, subscribe
from tests.test_users_admin import UPDATE

__all__ = ["live"]  # the fixture, used by these tests


async def _ids(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        chief = (await session.execute(select(User.id).where(User.username == "chief"))).scalar_one()
        other = (await session.execute(select(User.department_id).where(User.username == "physician2"))).scalar_one()
    return int(chief), int(other)


async def _delivery_reads(db: Database) -> list[tuple[int | None, int | None]]:
    async with db.session() as session:
        statement = select(Event.actor_id, Event.patient_id).where(Event.operation == "messageAdded").order_by(Event.id)  # type: ignore[arg-type]
        return [(row[0], row[1]) for row in (await session.execute(statement)).all()]


async def test_a_chief_moved_to_another_department_gets_no_more_messages(
    live: str, client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watcher that closes sockets is slowed right down: the delivery itself must notice.
    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 600)
    conversation = await start(client)
    chief_ws = await subscribe(live, await client.token("chief"), conversation)
    await client.data(SEND, {"c": conversation, "t": "第一条"}, as_="patient")
    assert (await receive(chief_ws))["payload"]["data"]["messageAdded"]["text"] == "第一条"

    chief, elsewhere = await _ids(db)
    async with db.transaction() as session:  # moved, with no notice to anyone
        await session.execute(update(User).where(User.id == chief).values(department_id=elsewhere))  # type: ignore[arg-type]
    await client.data(SEND, {"c": conversation, "t": "第二条：不该给原主任"}, as_="patient")
    answer = await receive(chief_ws)
    assert "第二条" not in str(answer)
    assert answer["type"] in ("next", "error")
    errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await chief_ws.close()


async def test_moving_a_subscriber_through_the_api_closes_their_socket_at_once(
    live: str, client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SubscriptionView, "revalidate_seconds", 600)  # only the change's notice can close it
    conversation = await start(client)
    chief_ws = await subscribe(live, await client.token("chief"), conversation)
    _, elsewhere = await _ids(db)
    async with db.session() as session:
        chief = (await session.execute(select(User.id).where(User.username == "chief"))).scalar_one()
        assert (await session.get(Department, elsewhere)) is not None
    moved = await client.data(
        UPDATE,
        {"id": encode_id("User", chief), "input": {"departmentId": encode_id("Department", elsewhere)}},
        as_="admin",
    )
    assert moved["updateUser"]["id"]
    assert await asyncio.wait_for(closed_code(chief_ws), timeout=5) == 4403


async def test_messages_delivered_to_staff_are_recorded_as_reads(
    live: str, client: GraphQLClient, db: Database
) -> None:
    conversation = await start(client)
    await client.register_trusted(SUBSCRIBE)  # the patient's sessions run only the mini-program's documents
    sockets = {who: await subscribe(live, await client.token(who), conversation) for who in ("chief", "patient")}
    await client.data(SEND, {"c": conversation, "t": "便后出血"}, as_="patient")
    for ws in sockets.values():
        assert (await receive(ws))["payload"]["data"]["messageAdded"]["text"] == "便后出血"
    chief, _ = await _ids(db)
    reads = await _delivery_reads(db)
    assert [actor for actor, _ in reads] == [chief]  # the chief's delivery; the patient's own is no read by others
    assert reads[0][1] is not None
    for ws in sockets.values():
        await ws.close()


def test_every_subscription_rechecks_scope_before_each_delivery() -> None:
    """A new subscription field refreshes the caller's scope (`ctx.refresh()`) inside its delivery loop."""
    root = Path(__file__).resolve().parent.parent / "schema"
    missing: list[str] = []
    found = 0
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if not any("subscription" in d for d in decorators):
                continue
            found += 1
            loops = [n for n in ast.walk(node) if isinstance(n, (ast.While, ast.For, ast.AsyncFor))]
            if not any("refresh" in ast.unparse(loop) for loop in loops):
                missing.append(f"{path.name}:{node.name}")
    assert found and missing == []
