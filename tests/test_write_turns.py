"""Concurrent reads keep every read event, and on SQLite their writes take turns with the WAL checkpointed beside
them (core.db.WriteTurns, issue 23): the request pool's connections run no checkpoint of their own, and after
enough writes a background checkpoint has copied the WAL back, so it restarts instead of growing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import CHECKPOINT_EVERY_WRITES, Database
from models.audit import Event
from tests.conftest import GraphQLClient

PATIENTS = "{ patients(first: 20) { edges { node { id name gender } } } }"
CLIENTS = 5
REQUESTS = CHECKPOINT_EVERY_WRITES // CLIENTS  # per client: as many writes in all as start a checkpoint


async def test_concurrent_reads_keep_every_event_and_checkpoint_beside(client: GraphQLClient) -> None:
    db = client.services.db
    token = await client.token("chief")

    before = await patients_events(db)

    async def reader() -> int:
        read = 0
        for _ in range(REQUESTS):
            data = await client.data(PATIENTS, token=token)
            read += len(data["patients"]["edges"])
        return read

    read = sum(await asyncio.gather(*(reader() for _ in range(CLIENTS))))
    assert read > 0
    # every answered request's events are in the database: one per patient read, none lost, none twice
    assert await patients_events(db) - before == read
    assert CLIENTS * REQUESTS == CHECKPOINT_EVERY_WRITES
    if db.dialect != "sqlite":
        assert not db.write_turns.enabled  # row locks: nothing to take turns for
        return
    assert db.turns_engine is not None
    async with db.turns_engine.connect() as connection:  # the turns' connections, which write
        assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        assert (await connection.exec_driver_sql("PRAGMA synchronous")).scalar_one() == 2  # FULL: durable at commit
    await db.write_turns.finish()  # the checkpoint the last write started
    frames, copied = wal_index(db)
    assert copied == frames > 0  # the WAL is wholly copied into the database
    await client.data(PATIENTS, token=token)  # so the next write starts it again from its beginning
    after, _ = wal_index(db)
    # one INSERT's pages, not the hundred INSERTs' before it (with no checkpoint, the WAL would keep them all)
    assert 0 < after * 10 < frames, (after, frames)


async def patients_events(db: Database) -> int:
    async with db.session() as session:
        statement = select(func.count()).select_from(Event).where(Event.operation == "patients")
        return int((await session.execute(statement)).scalar_one())


def wal_index(db: Database) -> tuple[int, int]:
    """(frames in the WAL, frames already copied into the database), read from the WAL index (the -shm file:
    mxFrame in its header, nBackfill after the header's two copies) without checkpointing anything."""
    shm = Path(str(db.engine.url.database) + "-shm").read_bytes()
    (frames,) = struct.unpack_from("=I", shm, 16)
    (copied,) = struct.unpack_from("=I", shm, 96)
    return frames, copied


async def test_a_turn_waits_out_another_process_writer_without_the_busy_handler(client: GraphQLClient) -> None:
    """The audit sealer (its own process) holds SQLite's write lock for a step: a request's read events wait for it
    by trying again every millisecond, not in the busy handler's growing sleeps, and are all stored."""
    db = client.services.db
    token = await client.token("chief")
    if db.dialect != "sqlite":
        assert not db.write_turns.enabled and db.turns_engine is None
        return
    assert db.turns_engine is not None
    async with db.turns_engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 0
    async with db.read_engine.connect() as connection:  # the request pool's reads keep the busy handler
        assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 10000

    other = sqlite3.connect(str(db.engine.url.database), isolation_level=None, check_same_thread=False)
    held = asyncio.Event()
    hold_seconds = 0.2

    def hold_lock(loop: asyncio.AbstractEventLoop) -> None:
        other.execute("BEGIN IMMEDIATE")  # the write lock, as a seal step takes it
        loop.call_soon_threadsafe(held.set)
        time.sleep(hold_seconds)
        other.execute("COMMIT")

    before = await patients_events(db)
    retries = db.write_turns.busy_retries
    holder = asyncio.get_running_loop().run_in_executor(None, hold_lock, asyncio.get_running_loop())
    await held.wait()
    started = time.monotonic()
    result = await client.run(PATIENTS, token=token)
    waited = time.monotonic() - started
    await holder
    other.close()
    assert "errors" not in result, result
    read = len(result["data"]["patients"]["edges"])
    assert read > 0
    # it found the lock taken and tried again until the other writer committed, then wrote its events
    assert db.write_turns.busy_retries > retries
    assert waited >= hold_seconds * 0.5
    assert await patients_events(db) - before == read  # one per patient read, none lost, none twice


async def test_a_turn_raises_what_is_not_a_busy_lock(client: GraphQLClient) -> None:
    """Only SQLITE_BUSY is waited out: any other error of the write reaches the caller at once."""
    db = client.services.db
    if db.dialect != "sqlite":
        return

    async def broken(connection: AsyncConnection) -> None:
        await connection.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

    retries = db.write_turns.busy_retries
    with pytest.raises(OperationalError, match="no such table"):
        await db.write_turns.write(db.connection, broken)
    assert db.write_turns.busy_retries == retries


async def test_queued_writes_share_a_turn_and_one_failing_write_fails_alone(client: GraphQLClient) -> None:
    """Writes that queued behind a turn commit together (one transaction, one fsync); one that fails is rolled
    back with them, and then each runs alone: the others are stored, the failing one gets its own error."""
    db = client.services.db
    if db.dialect != "sqlite":
        return
    async with db.turns_engine.connect() as connection:  # type: ignore[union-attr]
        await connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS turn_probe (n INTEGER PRIMARY KEY)")

    def insert(n: int) -> Any:
        async def run(connection: AsyncConnection) -> int:
            result = await connection.exec_driver_sql(f"INSERT INTO turn_probe (n) VALUES ({n})")
            return int(result.rowcount)

        return run

    async def broken(connection: AsyncConnection) -> None:
        await connection.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

    commits = db.write_turns.commits
    outcomes = await asyncio.gather(
        *(db.write_turns.write(db.connection, insert(n)) for n in range(1, 11)),
        db.write_turns.write(db.connection, broken),
        *(db.write_turns.write(db.connection, insert(n)) for n in range(11, 21)),
        return_exceptions=True,
    )
    assert outcomes[:10] == [1] * 10 and outcomes[11:] == [1] * 10
    assert isinstance(outcomes[10], OperationalError) and "no such table" in str(outcomes[10])
    async with db.connection() as connection:
        stored = (await connection.exec_driver_sql("SELECT n FROM turn_probe ORDER BY n")).scalars().all()
    assert stored == list(range(1, 21))  # all but the failing one, each once
    # the first ran alone; the 20 queued behind it shared a turn, rolled back for the failing write, then each ran
    # alone: 1 + 19 commits
    assert db.write_turns.commits - commits == 20

    commits = db.write_turns.commits
    await asyncio.gather(*(db.write_turns.write(db.connection, insert(n)) for n in range(21, 41)))
    assert db.write_turns.commits - commits == 2  # the first alone, the 19 queued behind it in one transaction


async def test_a_writer_cancelled_while_queued_leaves_no_unread_failure(client: GraphQLClient) -> None:
    """A request cancelled (its client gone) while its write waits for a turn leaves the write queued: the next
    turn runs it, and its failure is read by the turns, not reported by asyncio as "Future exception was never
    retrieved" when the future is collected."""
    db = client.services.db
    if db.dialect != "sqlite":
        return
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    started = asyncio.Event()

    async def slow(connection: AsyncConnection) -> None:
        started.set()
        await asyncio.sleep(0.05)  # holds the turn while the next writer queues and is cancelled

    async def broken(connection: AsyncConnection) -> None:
        await connection.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

    async def ok(connection: AsyncConnection) -> int:
        return int((await connection.exec_driver_sql("SELECT 1")).scalar_one())

    async def cancelled_writer() -> bool:
        first = asyncio.ensure_future(db.write_turns.write(db.connection, slow))
        await started.wait()
        queued = asyncio.ensure_future(db.write_turns.write(db.connection, broken))
        await asyncio.sleep(0.01)
        queued.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await queued
        await first
        return queued.cancelled()

    try:
        assert await cancelled_writer()
        assert await db.write_turns.write(db.connection, ok) == 1  # its turn runs the cancelled one's write too
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(handler)
    assert [context.get("message") for context in reported] == []
