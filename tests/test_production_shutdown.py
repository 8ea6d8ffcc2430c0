"""SIGTERM to a live `server.py serve` (schema/engine/shutdown.py): /readyz fails first, a request in flight finishes
with its data, a new one is refused, a subscription socket is closed with 1001 (going away), the buffered request
figures and the audit seals are written, and the process exits within SHUTDOWN_GRACE_SECONDS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.db import Database
from models.operations import RequestMinute
from resolvers.audit.chain import unsealed_count, verify_chain
from tests.conftest import DEMO_PASSWORD, LOGIN, reset_database

ROOT = Path(__file__).resolve().parents[1]
GRACE = 30.0  # generous: a busy 2-core machine starts and stops slowly
DRAIN = 1.0
CREATE = "mutation ($n: String!) { createPosition(name: $n) { id name } }"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    await reset_database(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_MODE": "demo",
        "LOG_LEVEL": "INFO",
        "AUDIT_SEAL_INTERVAL_SECONDS": "30",  # the background sealer, which nothing wakes but writes and shutdown
        "FIGURES_FLUSH_SECONDS": "300",  # figures written on shutdown only
        "SCHEDULER_ENABLED": "false",
        "RATE_LIMIT_ENABLED": "false",
        "SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
        "SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }
    env.pop("REDIS_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
            [sys.executable, "server.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=served.base, timeout=2) as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, f"no start:\n{served.output()}"
                await asyncio.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def writes_held(database_url: str) -> Iterator[Any]:
    """Another client holds the `position` table (MariaDB: LOCK TABLES; SQLite: the database's write lock), so a
    createPosition waits inside the server until the test lets go (`release()` on what this yields)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        connection: Any = sqlite3.connect(str(url.database), isolation_level=None, timeout=10)
        connection.execute("BEGIN IMMEDIATE")
        release = lambda: connection.execute("COMMIT")  # noqa: E731
    else:
        import pymysql

        connection = pymysql.connect(
            host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username, password=url.password or "",
            database=url.database, autocommit=True,
        )  # fmt: skip
        connection.cursor().execute("LOCK TABLES position WRITE")
        release = lambda: connection.cursor().execute("UNLOCK TABLES")  # noqa: E731

    class Hold:
        released = False

        def release(self) -> None:
            if not self.released:
                self.released = True
                release()

    hold = Hold()
    try:
        yield hold
    finally:
        hold.release()
        connection.close()


async def login(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post("/graphql", json={"query": LOGIN, "variables": {"u": username, "p": DEMO_PASSWORD}})
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


@asynccontextmanager
async def subscription_socket(base: str, token: str) -> AsyncIterator[Any]:
    async with connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "connection_ack"
        yield ws


async def closing_code(ws: Any) -> int:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return int(closed.rcvd.code)


async def refused(base: str) -> str:
    """How a new request fares: `503 SHUTTING_DOWN` (the port still open) or `connection refused` (closed), or,
    when the connection was accepted just as the listener closed, closed by the stopping server before any request
    was read (uvicorn closes connections that have no request yet): refused as well, nothing of it ran."""
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as fresh:
            response = await fresh.post("/graphql", json={"query": "{ __typename }"})
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return "connection refused"
    code = response.json()["errors"][0]["extensions"]["code"] if response.status_code != 200 else "served"
    return f"{response.status_code} {code}"


async def test_sigterm_drains_finishes_in_flight_closes_sockets_and_flushes(served: Served, database_url: str) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=30) as http:
        admin = await login(http, "admin")
        physician = await login(http, "physician")
        assert (await http.post("/graphql", json={"query": "{ positions { name } }"}, headers=bearer(admin))).is_success
        async with subscription_socket(served.base, physician) as ws:
            with writes_held(database_url) as hold:
                in_flight = asyncio.create_task(
                    http.post(
                        "/graphql", json={"query": CREATE, "variables": {"n": "Night shift"}}, headers=bearer(admin)
                    )
                )
                await asyncio.sleep(1.0)  # the request has reached the server and waits for the table
                assert not in_flight.done()

                served.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
                assert time.monotonic() - signalled < DRAIN
                code = await asyncio.wait_for(closing_code(ws), timeout=DRAIN + 5)
                assert code == 1001
                assert await refused(served.base) in ("503 SHUTTING_DOWN", "connection refused")
                assert not in_flight.done()
                hold.release()
                response = await asyncio.wait_for(in_flight, timeout=GRACE)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["createPosition"]["name"] == "Night shift"
    returncode = await asyncio.to_thread(served.process.wait, GRACE + 5)
    took = time.monotonic() - signalled
    assert took < GRACE, f"exited after {took:.1f} s\n{served.output()}"
    assert returncode in (0, -signal.SIGTERM), served.output()
    assert "Traceback" not in served.output(), served.output()

    db = Database(database_url)
    try:
        assert await unsealed_count(db) == 0  # the sealer's last pass ran on the way out
        verification = await verify_chain(db)
        assert verification.ok, verification.report()
        async with db.session() as session:
            counted = (await session.execute(select(func.sum(RequestMinute.requests)))).scalar()  # type: ignore[arg-type]
        assert counted and counted >= 4  # two logins, the list, the write: written on shutdown, not lost
    finally:
        await db.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
