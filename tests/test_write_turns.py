"""Concurrent reads keep every read event, and on SQLite their writes take turns with the WAL checkpointed beside
them (core.db.WriteTurns, issue 23): the request pool's connections run no checkpoint of their own, and after
enough writes a background checkpoint has copied the WAL back, so it restarts instead of growing."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from sqlalchemy import func, select

from core.db import CHECKPOINT_EVERY_WRITES, Database
from models.audit import Event
from tests.conftest import GraphQLClient

PATIENTS = "{ patients(first: 20) { edges { node { id name gender } } } }"
CLIENTS = 5
REQUESTS = CHECKPOINT_EVERY_WRITES // CLIENTS  # per client: as many writes in all as start a checkpoint


async def test_concurrent_reads_keep_every_event_and_checkpoint_beside(client: GraphQLClient) -> None:
    db = client.services.db
    token = await client.token("chief")

    async def patients_events() -> int:
        async with db.session() as session:
            statement = select(func.count()).select_from(Event).where(Event.operation == "patients")
            return int((await session.execute(statement)).scalar_one())

    before = await patients_events()

    async def reader() -> int:
        read = 0
        for _ in range(REQUESTS):
            data = await client.data(PATIENTS, token=token)
            read += len(data["patients"]["edges"])
        return read

    read = sum(await asyncio.gather(*(reader() for _ in range(CLIENTS))))
    assert read > 0
    # every answered request's events are in the database: one per patient read, none lost, none twice
    assert await patients_events() - before == read
    assert CLIENTS * REQUESTS == CHECKPOINT_EVERY_WRITES
    if db.dialect != "sqlite":
        assert not db.write_turns.enabled  # row locks: nothing to take turns for
        return
    async with db.read_engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        assert (await connection.exec_driver_sql("PRAGMA synchronous")).scalar_one() == 2  # FULL: durable at commit
    await db.write_turns.finish()  # the checkpoint the last write started
    frames, copied = wal_index(db)
    assert copied == frames > 0  # the WAL is wholly copied into the database
    await client.data(PATIENTS, token=token)  # so the next write starts it again from its beginning
    after, _ = wal_index(db)
    # one INSERT's pages, not the hundred INSERTs' before it (with no checkpoint, the WAL would keep them all)
    assert 0 < after * 10 < frames, (after, frames)


def wal_index(db: Database) -> tuple[int, int]:
    """(frames in the WAL, frames already copied into the database), read from the WAL index (the -shm file:
    mxFrame in its header, nBackfill after the header's two copies) without checkpointing anything."""
    shm = Path(str(db.engine.url.database) + "-shm").read_bytes()
    (frames,) = struct.unpack_from("=I", shm, 16)
    (copied,) = struct.unpack_from("=I", shm, 96)
    return frames, copied
