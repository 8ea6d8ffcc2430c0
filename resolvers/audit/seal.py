"""Sealing: new events linked into the hash chain in id order, in short steps under a lock on the state row.

Events are inserted unchained, so concurrent writers never wait for each other. A seal step links the next
`batch_size` unsealed events: content_hash = sha256(canonical JSON of the event), chain_hash =
sha256(prev_chain_hash + content_hash), `seq` = position in the chain.

A step hashes the events' content first, with no lock (an event row never changes: the triggers refuse it),
and only then takes the lock on the single `audit_seal_state` row to link them: the lock is held for a select of
ids, one cheap link hash per event, one insert and one update. On SQLite that lock is the database's write
lock, which every request's read events wait for; on MariaDB a row lock nobody else takes.

On SQLite a pass takes small steps (SQLITE_STEP_EVENTS) and leaves the lock free after each for at least as long
as the step held it (STEP_PAUSE_RATIO; the next step's read-ahead runs in that time, and the pass sleeps what is
left of it): a request writing its read events while a step holds the lock sleeps in SQLite's busy handler with a
growing back-off (1, 2, 5, 10, 15, 20, 25 ms...), and steps back to back left it windows too short to land in
(issue 23: p99 3x at 5 clients). Short holds with free windows at least as long keep its wait to a few
milliseconds, at half the lock's time at most for sealing. MariaDB's state row lock blocks nobody's events: its
steps run back to back.

Who calls it: the background sealer (resolvers/audit/sealer.py, in its own process), each write when the
background sealer is off (tests), `verify-audit` / `archive-audit` (a full sweep), the `audit.seal_pending` job.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database, lost_race
from core.timeutil import as_utc, utcnow
from resolvers.audit.records import (
    EVENT,
    GAP,
    SEAL,
    STATE,
    AuditChainError,
    content_hash,
    driver_record_maker,
    event_record,
    link_hash,
)

# An id gap below sealed events is an insert still in flight (MariaDB commits out of id order) or a rolled-back
# one. The sealer looks back over a gap this long before treating it as permanent; a late event after that is
# still sealed by the full sweep of verify-audit / archive-audit.
# The gaps are rows of their own (AuditSealGap), at most MAX_WATCHED_GAPS at once: past it the oldest are dropped.
GAP_GRACE = timedelta(seconds=120)
MAX_WATCHED_GAPS = 10_000
LOST_RACE_ATTEMPTS = 5
STEP_EVENTS = 500  # events per locked step (MariaDB: a row lock nobody else waits for)
MAX_STEP_EVENTS = STEP_EVENTS  # the longest step of a pass falling behind (seal_pending's grow_after)
SQLITE_STEP_EVENTS = 100  # SQLite: the database's write lock, which every request's read events wait for
STEP_PAUSE_RATIO = {"sqlite": 1.0}  # pause after a step / the time it held the lock; other databases: none

log = logging.getLogger(__name__)


def longer_step(size: int) -> int:
    """The step after `size` for a sealer falling behind: twice as long, up to MAX_STEP_EVENTS."""
    return min(size * 2, max(size, MAX_STEP_EVENTS))


def step_events(dialect: str) -> int:
    """Events per locked step when the caller does not say."""
    return SQLITE_STEP_EVENTS if dialect == "sqlite" else STEP_EVENTS


async def _pause(seconds: float) -> None:
    """The pause between two steps of a pass (its own name, so a test can see each one)."""
    await asyncio.sleep(seconds)


class _Hold:
    """When a step asked for the lock, how long it held it (from taken to committed) and when it let it go
    (time.monotonic, the event loop's clock); `free_until`: the next step does not ask for it before then."""

    asked_at = 0.0
    seconds = 0.0
    released_at = 0.0
    free_until = 0.0
    left: tuple[int, int, int] | None = None  # the Position the last step committed


@asynccontextmanager
async def _locked_state(db: Database, hold: _Hold) -> AsyncIterator[tuple[AsyncSession, dict[str, Any]]]:
    """A transaction holding the lock on the seal state row (created on first use); `hold` gets how long.

    The first statement is an UPDATE of that row: on MariaDB a row lock, on SQLite the database write lock
    taken at once (a transaction that starts with a write behaves as BEGIN IMMEDIATE). Released at commit."""
    async with db.sessionmaker() as session:
        if db.dialect != "sqlite":  # read what others committed before we got the lock (this begins the transaction)
            await session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        locked_at: float | None = None
        try:
            now = utcnow()
            hold.asked_at = time.monotonic()
            result = await session.execute(update(STATE).where(STATE.c.id == 1).values(updated_at=now))
            locked_at = time.monotonic()
            if result.rowcount == 0:  # type: ignore[attr-defined]
                if (await session.execute(select(SEAL.c.seq).limit(1))).first() is not None:
                    raise AuditChainError("the seal state row is missing while seals exist; run verify-audit")
                # ids need not start at 1 (MariaDB keeps its counter): watch for gaps from the first event on
                first = (await session.execute(select(func.min(EVENT.c.id)))).scalar_one()
                await session.execute(insert(STATE).values(id=1, updated_at=now, scan_from_id=max(0, (first or 1) - 1)))
            state = dict((await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().one())
            yield session, state
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            if locked_at is not None:
                hold.released_at = time.monotonic()
                hold.seconds = hold.released_at - locked_at


Gap = tuple[int, int, datetime]  # first id, last id, when the sealer first saw it missing


def _next_gaps(
    gaps: Sequence[Gap], max_sealed: int, ids: Sequence[int], now: datetime, *, first_step: bool = False
) -> list[Gap]:
    """The gaps to watch after a step that sealed `ids` (in id order) when everything up to `max_sealed` was sealed
    or in `gaps`: a sealed id at or below it came late and leaves its gap; an id skipped above it (missing when
    the step read the ids after it) is a new gap; a gap watched GAP_GRACE is dropped (nothing will fill it); past
    MAX_WATCHED_GAPS the oldest are dropped. Work in the step's ids and the watched gaps, never in what was sealed
    before (issue 23: finding gaps again from the seals cost each step the whole lag behind a gap). The chain's
    `first_step` watches no gap below its first event (ids need not start at 1: MariaDB keeps its counter)."""
    late = [event_id for event_id in ids if event_id <= max_sealed]
    kept: list[Gap] = []
    for first, last, seen in gaps:
        if now - as_utc(seen) >= GAP_GRACE:
            continue
        start = first
        for event_id in late[bisect.bisect_left(late, first) : bisect.bisect_right(late, last)]:
            if event_id > start:
                kept.append((start, event_id - 1, seen))
            start = event_id + 1
        if start <= last:
            kept.append((start, last, seen))
    expected = ids[0] if first_step and ids else max_sealed + 1
    for event_id in ids:
        if event_id > max_sealed:
            if event_id > expected:
                kept.append((expected, event_id - 1, now))
            expected = event_id + 1
    if len(kept) > MAX_WATCHED_GAPS:
        kept = sorted(sorted(kept, key=lambda gap: (as_utc(gap[2]), gap[0]))[-MAX_WATCHED_GAPS:])
        if len(gaps) < MAX_WATCHED_GAPS:  # once when the bound is reached, not at every step while it holds
            log.warning("audit sealer: more than %d id gaps; the oldest are no longer watched", MAX_WATCHED_GAPS)
    return kept


def _pending(columns: Sequence[Any], low: Any, batch_size: Any) -> Any:
    """The first `batch_size` unsealed events above id `low`, in id order (numbers, or bind parameters): the full
    sweep's anti-join, from id 0."""
    return (
        select(*columns)
        .select_from(EVENT.outerjoin(SEAL, SEAL.c.event_id == EVENT.c.id))
        .where(EVENT.c.id > low, SEAL.c.event_id.is_(None))
        .order_by(EVENT.c.id)
        .limit(batch_size)
    )


def _newer(columns: Sequence[Any], max_sealed: Any, batch_size: Any) -> Any:
    """The first `batch_size` events above the highest sealed id, in id order: all unsealed (events are sealed in
    id order), so an index range with no anti-join."""
    return select(*columns).where(EVENT.c.id > max_sealed).order_by(EVENT.c.id).limit(batch_size)


def _in_gaps(columns: Sequence[Any], batch_size: int) -> Any:
    """Unsealed events whose ids are in a watched gap (inserts that committed late), in id order."""
    return (
        select(*columns)
        .select_from(
            GAP.join(EVENT, EVENT.c.id.between(GAP.c.first_id, GAP.c.last_id)).outerjoin(
                SEAL, SEAL.c.event_id == EVENT.c.id
            )
        )
        .where(SEAL.c.event_id.is_(None))
        .order_by(EVENT.c.id)
        .limit(batch_size)
    )


async def _content_hashes(session: AsyncSession, statement: Any) -> dict[int, str]:
    rows = (await session.execute(statement)).mappings().all()
    return {int(row["id"]): content_hash(event_record(row)) for row in rows}


_PENDING_SQL: dict[
    tuple[str, bool], tuple[str, tuple[str, ...], dict[str, Any], Callable[[Sequence[Any]], dict[str, Any]]]
] = {}


async def _pending_hashes(session: AsyncSession, low: int, batch_size: int, *, full: bool) -> dict[int, str]:
    """_content_hashes of the next events to seal (`_newer` than `low`, or the full sweep's `_pending` above it),
    read as the driver hands them over: most of the CPU of sealing was SQLAlchemy's processing of each row (dates
    parsed to be formatted again, JSON). The record is the same (driver_record_maker; a test compares them)."""
    connection = await session.connection()
    dialect = connection.dialect
    cached = _PENDING_SQL.get((dialect.name, full))
    if cached is None:
        query = _pending if full else _newer
        compiled = query(list(EVENT.c), bindparam("low"), bindparam("size")).compile(dialect=dialect)
        occurred_at = EVENT.c.occurred_at.type._cached_result_processor(dialect, None)
        order = tuple(compiled.positiontup or ())
        make = driver_record_maker(tuple(EVENT.c.keys()), occurred_at)
        cached = _PENDING_SQL[dialect.name, full] = (compiled.string, order, dict(compiled.params), make)
    sql, order, defaults, make = cached
    params = {**defaults, "low": low, "size": batch_size}
    result = await connection.exec_driver_sql(sql, tuple(params[name] for name in order))
    hashes = {}
    for values in result.all():
        record = make(values)
        hashes[int(record["id"])] = content_hash(record)
    return hashes


# What a step leaves and the next one starts from: (highest sealed id, last seq, scan position). The scan position
# is below the highest sealed id exactly when gaps are watched.
Position = tuple[int, int, int]


def _position(state: Mapping[str, Any]) -> Position:
    return int(state["max_sealed_event_id"]), int(state["last_seq"]), int(state["scan_from_id"])


async def _hash_ahead(
    db: Database, *, batch_size: int, full: bool, known: Position | None = None
) -> tuple[dict[int, str], Position | None]:
    """The content hashes of the events the next step will link, computed before its lock is taken, and the
    position of the state they were read after (None: no state row yet). `known`: the position the pass's last
    step left, read again only for the first step (a state moved since by another sealer is seen under the lock,
    where it is compared)."""
    async with db.session() as session:
        seen = known
        if seen is None:
            state = (await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().first()
            seen = None if state is None else _position(state)
        if full or seen is None:
            return await _pending_hashes(session, 0, batch_size, full=True), seen
        max_sealed, _seq, scan_from = seen
        hashes = await _content_hashes(session, _in_gaps(list(EVENT.c), batch_size)) if scan_from < max_sealed else {}
        hashes.update(await _pending_hashes(session, max_sealed, batch_size, full=False))
        return hashes, seen


_SEAL_INSERTS: dict[str, tuple[str, tuple[str, ...], Any]] = {}


async def _insert_seals(session: AsyncSession, seals: list[dict[str, Any]]) -> None:
    """One executemany of the driver's own INSERT: this runs under the lock, and routing hundreds of rows through
    SQLAlchemy's per-row parameter processing cost most of the lock's hold. Only `sealed_at` needs processing
    (the same instant for every row), so it is processed once, as SQLAlchemy would."""
    connection = await session.connection()
    dialect = connection.dialect
    cached = _SEAL_INSERTS.get(dialect.name)
    if cached is None:
        compiled = insert(SEAL).values({name: bindparam(name) for name in SEAL.c.keys()}).compile(dialect=dialect)
        order = tuple(compiled.positiontup or ())
        assert sorted(order) == sorted(SEAL.c.keys())  # positional parameters, one per column
        cached = _SEAL_INSERTS[dialect.name] = (compiled.string, order, SEAL.c.sealed_at.type.bind_processor(dialect))
    sql, order, process_instant = cached
    sealed_at = seals[0]["sealed_at"]
    shared = {"sealed_at": process_instant(sealed_at) if process_instant else sealed_at}
    await connection.exec_driver_sql(sql, [tuple({**seal, **shared}[name] for name in order) for seal in seals])


async def _ids_to_seal(session: AsyncSession, state: Mapping[str, Any], *, batch_size: int, full: bool) -> list[int]:
    """Under the lock: the ids the step links, in id order (late events in watched gaps first: lower ids)."""
    max_sealed, _seq, scan_from = _position(state)
    if full:
        statements = [_pending([EVENT.c.id], 0, batch_size)]
    else:
        statements = [_in_gaps([EVENT.c.id], batch_size)] if scan_from < max_sealed else []
        statements.append(_newer([EVENT.c.id], max_sealed, batch_size))
    ids: list[int] = []
    for statement in statements:
        ids.extend(int(i) for i in (await session.execute(statement)).scalars().all())
    return ids


async def _watch_gaps(session: AsyncSession, state: Mapping[str, Any], ids: Sequence[int], now: datetime) -> list[Gap]:
    """Under the lock: the watched gaps brought up to date for a step that sealed `ids`, rows changed as needed."""
    max_sealed, _seq, scan_from = _position(state)
    watched: list[Gap] = []
    if scan_from < max_sealed:
        rows = await session.execute(select(GAP.c.first_id, GAP.c.last_id, GAP.c.seen_at).order_by(GAP.c.first_id))
        watched = [(int(first), int(last), seen) for first, last, seen in rows.all()]
    kept = _next_gaps(watched, max_sealed, ids, now, first_step=int(state["last_seq"]) == 0)
    before, after = {gap[0]: gap for gap in watched}, {gap[0]: gap for gap in kept}
    gone = [first for first, gap in before.items() if after.get(first) != gap]
    for chunk in range(0, len(gone), 500):
        await session.execute(GAP.delete().where(GAP.c.first_id.in_(gone[chunk : chunk + 500])))
    added = [gap for first, gap in after.items() if before.get(first) != gap]
    if added:
        await session.execute(insert(GAP), [{"first_id": f, "last_id": last, "seen_at": t} for f, last, t in added])
    return kept


async def _seal_step(db: Database, *, batch_size: int, full: bool, hold: _Hold) -> int:
    hashed, seen = await _hash_ahead(db, batch_size=batch_size, full=full, known=hold.left)
    wait = hold.free_until - time.monotonic()
    if wait > 0:  # what is left of the free time the last step owes the others
        await _pause(wait)
    async with _locked_state(db, hold) as (session, state):
        now = utcnow()
        if db.dialect == "sqlite" and not full and seen == _position(state):
            # SQLite has one writer at a time and gives ids in commit order: an event committed since the read
            # ahead has a higher id than those it read, and no sealer moved the chain meanwhile (the same state):
            # they are the first pending events. One statement less while every request's writes wait.
            ids = sorted(hashed)
        else:
            ids = await _ids_to_seal(session, state, batch_size=batch_size, full=full)
        late = [event_id for event_id in ids if event_id not in hashed]
        if late:  # committed (with a lower id, or past the read-ahead's end) after the read ahead
            hashed.update(await _content_hashes(session, select(*EVENT.c).where(EVENT.c.id.in_(late))))
        seq, prev = int(state["last_seq"]), str(state["last_chain_hash"])
        seals = []
        for event_id in ids:
            digest = hashed[event_id]
            chain = link_hash(prev, digest)
            seq += 1
            seals.append(
                {
                    "event_id": event_id,
                    "seq": seq,
                    "content_hash": digest,
                    "prev_hash": prev,
                    "chain_hash": chain,
                    "sealed_at": now,
                }
            )
            prev = chain
        if seals:
            await _insert_seals(session, seals)
        gaps = await _watch_gaps(session, state, ids, now)
        max_sealed = max([int(state["max_sealed_event_id"]), *ids])
        scan_from = gaps[0][0] - 1 if gaps else max_sealed
        await session.execute(
            update(STATE)
            .where(STATE.c.id == 1)
            .values(
                last_seq=seq,
                last_chain_hash=prev,
                max_sealed_event_id=max_sealed,
                scan_from_id=scan_from,
                gap_seen_at=min(as_utc(gap[2]) for gap in gaps) if gaps else None,
            )
        )
    hold.left = (max_sealed, seq, scan_from)  # committed
    return len(seals)


async def _seal_step_retrying(db: Database, *, batch_size: int, full: bool, hold: _Hold) -> int:
    """A seal step, run again when another instance sealed at the same moment: it created the state row first
    (IntegrityError), or, on Galera, its step through another node certified first (a deadlock error at COMMIT:
    the state row is the one row every step writes, so two steps never both commit)."""
    for attempt in range(1, LOST_RACE_ATTEMPTS + 1):
        try:
            return await _seal_step(db, batch_size=batch_size, full=full, hold=hold)
        except (IntegrityError, DBAPIError) as error:
            if attempt == LOST_RACE_ATTEMPTS or not (isinstance(error, IntegrityError) or lost_race(error)):
                raise
            await asyncio.sleep(random.uniform(0, 0.05) * attempt)  # noqa: S311 - a pause, not a secret
    raise AssertionError("unreachable")


async def needs_sealing(db: Database) -> bool:
    """Cheap, no lock: is there an event past the sealed ones (or an id gap still being watched)?"""
    async with db.session() as session:
        row = (
            await session.execute(
                select(
                    STATE.c.max_sealed_event_id,
                    STATE.c.scan_from_id,
                    select(func.max(EVENT.c.id)).scalar_subquery(),
                ).where(STATE.c.id == 1)
            )
        ).first()
        if row is None:
            return (await session.execute(select(EVENT.c.id).limit(1))).first() is not None
    max_sealed, scan_from, max_event = row
    return max_event is not None and (max_event > max_sealed or scan_from < max_sealed)


def count_unsealed() -> Any:
    """How many events have no seal yet (a full count: for verify-audit and benchmarks, not for every pass)."""
    return (
        select(func.count())
        .select_from(EVENT.outerjoin(SEAL, SEAL.c.event_id == EVENT.c.id))
        .where(SEAL.c.event_id.is_(None))
    )


async def unsealed_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(count_unsealed())).scalar_one())


async def seal_pending(
    db: Database,
    *,
    batch_size: int | None = None,
    max_batches: int | None = None,
    full: bool = False,
    pause_ratio: float | None = None,
    grow_after: float | None = None,
) -> int:
    """Seal unsealed events in id order, `batch_size` per short locked step; returns how many were sealed.

    `full` sweeps the whole table for unsealed events (late inserts past the grace period included). Between two
    steps the pass leaves the lock free `pause_ratio` times as long as the step held it (default:
    STEP_PAUSE_RATIO, by database), so that the lock is free at least that share of the time for everyone else.
    A pass still running after `grow_after` seconds is falling behind: each further step is twice as long as the
    one before, up to MAX_STEP_EVENTS (a step costs milliseconds whatever it seals: 100-event steps took 64 us of
    CPU per event, 500-event steps 36)."""
    size = batch_size or step_events(db.dialect)
    ratio = STEP_PAUSE_RATIO.get(db.dialect, 0.0) if pause_ratio is None else pause_ratio
    total = 0
    batches = 0
    hold = _Hold()
    grow_at = None if grow_after is None else time.monotonic() + grow_after
    while max_batches is None or batches < max_batches:
        if grow_at is not None and batches and time.monotonic() >= grow_at:
            size = longer_step(size)
        hold.free_until = hold.released_at + hold.seconds * ratio if batches else 0.0
        hold.seconds = 0.0
        sealed = await _seal_step_retrying(db, batch_size=size, full=full, hold=hold)
        total += sealed
        batches += 1
        if sealed < size:
            break
    return total
