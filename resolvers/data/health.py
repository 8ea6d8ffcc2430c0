"""What the operations module reads off the machinery: the connection pools, database and Redis round trips,
and the migration the database is at. Kept here, below the domain modules, which never touch the engine."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from core.db import Database

if TYPE_CHECKING:
    from resolvers.data.context import Context


@dataclass(frozen=True)
class PoolFigures:
    name: str  # requests (the autocommit connection each request reads through) | transactions (write units)
    in_use: int
    size: int  # connections it may open (pool size + overflow)
    idle: int
    waiting: int  # callers waiting for a connection


def _waiting(pool: Any, gate: Any = None) -> int:
    """Callers queued for a connection: at the pool's gate (first come, first served), and in the pool itself."""
    waiting = 0
    try:
        if gate is not None and gate._gates is not None:
            waiting += len(gate._gates[1]._waiters or ())
        queue = getattr(pool._pool, "_queue", None)  # the async adaptation of the pool's queue
        waiting += len(getattr(queue, "_getters", ()) or ())
    except AttributeError:
        pass
    return waiting


def pool_figures(db: Database) -> list[PoolFigures]:
    figures = []
    pools = (
        ("requests", db.read_engine, db.request_gate, db.shelf),
        ("transactions", db.engine, db.transaction_gate, db.transaction_shelf),
    )
    for name, engine, gate, shelf in pools:
        pool: Any = engine.sync_engine.pool
        try:
            size = pool.size() + max(pool._max_overflow, 0)
            in_use, idle = pool.checkedout(), pool.checkedin()
            shelved = len(shelf)  # out of the pool but idle, waiting for their next use (core/db.py Shelf)
            in_use, idle = in_use - shelved, idle + shelved
        except AttributeError:  # a pool without a queue (none configured here today)
            size, in_use, idle = 0, 0, 0
        figures.append(PoolFigures(name=name, in_use=in_use, size=size, idle=idle, waiting=_waiting(pool, gate)))
    return figures


async def database_round_trip(db: Database) -> float:
    """Milliseconds for `SELECT 1` on a pooled connection (the wait for the connection included)."""
    started = time.perf_counter()
    async with db.connection() as connection:
        await connection.execute(text("SELECT 1"))
    return round((time.perf_counter() - started) * 1000, 3)


async def redis_round_trip(url: str | None, *, wait: float = 2.0) -> float | None:
    """Milliseconds for a PING, None when Redis is not configured; raises when it does not answer."""
    if not url:
        return None
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=wait, socket_connect_timeout=wait)
    try:
        await client.ping()  # the connection is made outside the measurement
        started = time.perf_counter()
        await asyncio.wait_for(client.ping(), wait)
        return round((time.perf_counter() - started) * 1000, 3)
    finally:
        await client.aclose()


async def migration_revision(db: Database) -> str | None:
    """The revision the database is at (Alembic's table), None before the first migration."""
    async with db.connection() as connection:
        try:
            return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except Exception:
            return None


# ---- for domain code, which reaches the engine only through the data layer -------------------------


async def database_figures(ctx: Context) -> tuple[list[PoolFigures], float]:
    """The pools of the context's database and a round trip to it."""
    return pool_figures(ctx.db), await database_round_trip(ctx.db)
