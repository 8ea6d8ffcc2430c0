"""The tamper-evident audit trail: the event tables refuse UPDATE and DELETE in the database, writes through the
API leave sealed events, and `verify-audit` finds an edited, deleted or re-linked event (SQLite and MariaDB)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from core.db import Database
from core.timeutil import utcnow
from models.audit import AuditSealGap, AuditSealState, Event, EventSeal
from resolvers.audit import seal as seal_module
from resolvers.audit.chain import (
    GAP_GRACE,
    link_hash,
    maintenance,
    needs_sealing,
    seal_pending,
    verify_chain,
)
from resolvers.audit.seal import STEP_PAUSE_RATIO, _next_gaps
from tests.conftest import GraphQLClient

ROOT = Path(__file__).resolve().parent.parent
STRONG = "Str0ng-Passw0rd!"
CREATE_USER = """mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }"""


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python server.py ...` against the test database (demo settings, as the test app runs)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in {"REDIS_URL", "APP_MODE", "JWT_SECRET", "DATA_ENCRYPTION_KEYS", "SEARCH_HASH_KEY"}
    }
    environment.update(DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def add_events(db: Database, count: int, *, when: datetime | None = None, action: str = "read") -> list[int]:
    """Events inserted as the app inserts reads (one multi-row insert); returns their ids."""
    rows = [
        {
            "occurred_at": when or utcnow(),
            "actor_id": 1,
            "action": action,
            "operation": "test",
            "entity_type": "Patient",
            "entity_id": str(n),
            "patient_id": None,
            "request_id": f"req-{n}",
            "ip": "127.0.0.1",
            "outcome": "success",
            "detail": {"n": n, "name": "张三"},
        }
        for n in range(count)
    ]
    async with db.transaction() as session:
        before = (await session.execute(select(func.max(Event.id)))).scalar_one() or 0  # type: ignore[arg-type]
        await session.execute(insert(Event), rows)
        ids = (await session.execute(select(Event.id).where(Event.id > before).order_by(Event.id))).scalars().all()  # type: ignore[arg-type, operator]
    return [int(i) for i in ids if i is not None]


async def create_user(client: GraphQLClient, name: str) -> None:
    await client.data(CREATE_USER, {"input": {"username": name, "displayName": name, "password": STRONG}}, as_="admin")


async def raw(db: Database, statement: str, **params: Any) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text(statement), params)


# ---- the database refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE event SET outcome = 'denied' WHERE id = :id",
        "UPDATE event SET detail = NULL",
        "DELETE FROM event WHERE id = :id",
        "DELETE FROM event",
        "UPDATE event_seal SET content_hash = 'x' WHERE event_id = :id",
        "DELETE FROM event_seal WHERE event_id = :id",
    ],
)
async def test_event_tables_refuse_update_and_delete_in_the_database(
    client: GraphQLClient, db: Database, statement: str
) -> None:
    [event_id] = await add_events(db, 1)
    await seal_pending(db)
    with pytest.raises(DBAPIError) as refused:
        await raw(db, statement, id=event_id)
    assert "append-only" in str(refused.value.orig)
    async with db.session() as session:
        row = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
        seal = (await session.execute(select(EventSeal).where(EventSeal.event_id == event_id))).scalar_one()
    assert (row.outcome, row.detail, seal.event_id) == ("success", {"n": 0, "name": "张三"}, event_id)
    # inserting is what the table is for
    await add_events(db, 2)


# ---- sealing -----------------------------------------------------------------------------------


async def test_writes_through_the_api_leave_sealed_events(client: GraphQLClient, db: Database) -> None:
    await create_user(client, "nurse1")
    await client.data("{ patients(first: 5) { edges { node { id } } } }", as_="physician")  # reads: 5 events
    await create_user(client, "nurse2")  # the write's sealing step also links the reads before it
    async with db.session() as session:
        events = (await session.execute(select(Event).order_by(Event.id))).scalars().all()  # type: ignore[arg-type]
        seals = (await session.execute(select(EventSeal).order_by(EventSeal.seq))).scalars().all()  # type: ignore[arg-type]
        state = (await session.execute(select(AuditSealState))).scalar_one()
    assert [e.operation for e in events if e.operation != "login"][-7:] == ["createUser"] + ["patients"] * 5 + [
        "createUser"
    ]
    assert {seal.event_id for seal in seals} == {event.id for event in events}
    assert [seal.seq for seal in seals] == list(range(1, len(seals) + 1))
    assert [seal.event_id for seal in seals] == sorted(seal.event_id for seal in seals)  # linked in id order
    assert (state.last_seq, state.last_chain_hash) == (seals[-1].seq, seals[-1].chain_hash)
    assert not await needs_sealing(db)
    result = await verify_chain(db)
    assert result.ok, result.report()
    assert result.events == len(events) and result.unsealed == 0


async def test_concurrent_writers_and_sealers_make_one_chain(client: GraphQLClient, db: Database) -> None:
    async def writer(n: int) -> None:
        for _ in range(3):
            await add_events(db, n % 3 + 1)
            await seal_pending(db, batch_size=4)

    await asyncio.gather(*(writer(n) for n in range(8)))
    await seal_pending(db)
    result = await verify_chain(db)
    assert result.ok, result.report()
    async with db.session() as session:
        total = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
        seqs = (await session.execute(select(EventSeal.seq).order_by(EventSeal.seq))).scalars().all()  # type: ignore[arg-type]
    assert result.events == total == len(seqs) and list(seqs) == list(range(1, total + 1))


async def test_a_pass_leaves_the_lock_free_after_each_step_as_long_as_the_step_held_it(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the requests' read events wait for the seal steps' write lock: a pass leaves it free between its
    steps at least `pause_ratio` times as long as each step held it (issue 23); the next step's read-ahead runs in
    that time and the pass sleeps the rest. Checked on the sealer's own record of when it asked for the lock and
    when it let it go (the event loop's clock), not by timing anything."""
    await seal_pending(db)
    steps: list[tuple[float, float, float]] = []  # (asked for the lock, held it, let it go) per step
    pauses: list[float] = []
    locked_state = seal_module._locked_state
    pause = seal_module._pause

    @asynccontextmanager
    async def recording_lock(db: Database, hold: Any) -> AsyncIterator[Any]:
        async with locked_state(db, hold) as locked:
            yield locked
        steps.append((hold.asked_at, hold.seconds, hold.released_at))

    async def recording_pause(seconds: float) -> None:
        pauses.append(seconds)
        await pause(seconds)

    monkeypatch.setattr(seal_module, "_locked_state", recording_lock)
    monkeypatch.setattr(seal_module, "_pause", recording_pause)
    for ratio in (1.0, 30.0):  # 30: more than any read-ahead takes, so the pass sleeps before each next step
        steps.clear()
        pauses.clear()
        await add_events(db, 25)
        assert await seal_pending(db, batch_size=10, pause_ratio=ratio) == 25  # steps of 10, 10, 5
        assert len(steps) == 3
        for (_, held, released), (asked, _, _) in itertools.pairwise(steps):
            assert held > 0 and asked >= released + held * ratio - 1e-6  # (the loop clock's resolution)
    assert len(pauses) == 2  # ratio 30: a pause between steps, none after the last
    await add_events(db, 25)
    pauses.clear()
    assert await seal_pending(db, batch_size=10, pause_ratio=0.0) == 25
    assert pauses == []
    # by default: SQLite pauses (one write lock for everyone), MariaDB's row lock blocks no request's events
    assert STEP_PAUSE_RATIO.get("sqlite") == 1.0 and "mysql" not in STEP_PAUSE_RATIO
    result = await verify_chain(db)
    assert result.ok, result.report()


async def test_the_sealer_hashes_rows_as_the_driver_reads_them_as_verification_does(
    client: GraphQLClient, db: Database
) -> None:
    """The sealer reads pending events without SQLAlchemy's result processing and writes canonical JSON with orjson
    when no float is in it; verify-audit reads them processed and writes it with json: same content hashes."""
    await seal_pending(db)
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    details: list[Any] = [
        None,
        {},
        {"n": 1, "name": "张三", "quote": 'a"b\\c\n\u0001\u2028', "nested": [1, {"z": None, "a": True}]},
        {"ratio": 0.1, "small": 1e-07, "big": 1e16, "list": [1.5, 2]},  # floats: json's own spelling
        {"huge": 2**70, "negative": -(2**63)},  # beyond orjson's 64 bits
        {"\u00e9": 1, "e": 2, "\U0001f600": 3, "Z": 4},  # key order by code point
    ]
    rows = []
    for n, detail in enumerate(details):
        for mutation in (False, True):
            rows.append(
                {
                    "occurred_at": at + timedelta(microseconds=n * 7 if mutation else 0),
                    "actor_id": None if n % 2 else 1,
                    "action": "update" if mutation else "read",
                    "operation": "recordFollowUpOutcome" if mutation else "patients",
                    "entity_type": "Patient",
                    "entity_id": str(n),
                    "patient_id": n if n % 3 else None,
                    "request_id": f"req-{n}",
                    "ip": "::1",
                    "outcome": "success",
                    "detail": detail,
                    "is_mutation": mutation,
                    "user_agent": "Mozilla/5.0 (测试)" if mutation else "",
                    "duration_ms": n if mutation else None,
                    "variables": ({"input": {"score": 2.5, "note": "好"}} if n % 2 else {}) if mutation else None,
                }
            )
    async with db.transaction() as session:
        await session.execute(insert(Event), rows)
    async with db.session() as session:
        processed = await seal_module._content_hashes(session, seal_module._pending(list(Event.__table__.c), 0, 100))  # type: ignore[attr-defined]
        raw = await seal_module._pending_hashes(session, 0, 100, full=True)
    assert len(raw) == len(rows) and raw == processed
    await seal_pending(db)
    result = await verify_chain(db)
    assert result.ok and result.unsealed == 0, result.report()


def test_gaps_are_watched_as_ranges_until_filled_or_given_up() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = now + timedelta(seconds=5)
    assert _next_gaps([], 10, [11, 12, 13], now) == []
    # 14 is missing when 15 is sealed: an insert still in flight, or one rolled back
    assert _next_gaps([], 10, [11, 12, 13, 15], now) == [(14, 14, now)]
    assert _next_gaps([(14, 14, now)], 15, [16, 17], later) == [(14, 14, now)]  # still watched
    assert _next_gaps([(14, 14, now)], 15, [14, 16], later) == []  # it came: sealed late, the gap is gone
    assert _next_gaps([(14, 14, now)], 15, [16], now + GAP_GRACE) == []  # it never will
    # one late id in the middle of a range splits it; ids skipped above are new gaps (Galera's offsets: 3 apart)
    assert _next_gaps([(20, 29, now)], 30, [25, 31, 34, 37], later) == [
        (20, 24, now), (26, 29, now), (32, 33, later), (35, 36, later),
    ]  # fmt: skip
    # the chain's first step watches nothing below its first event (ids need not start at 1)
    assert _next_gaps([], 0, [5000, 5001], now, first_step=True) == []
    assert _next_gaps([], 0, [5000, 5002], now, first_step=True) == [(5001, 5001, now)]


def test_the_watched_gaps_are_bounded(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(seal_module, "MAX_WATCHED_GAPS", 3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = [(2, 2, now - timedelta(seconds=9)), (4, 4, now - timedelta(seconds=8))]
    kept = _next_gaps(old, 5, [7, 9, 11], now)
    assert kept == [(6, 6, now), (8, 8, now), (10, 10, now)]  # the newest three
    later = now + timedelta(seconds=1)
    assert _next_gaps(kept, 11, [13], later) == [(8, 8, now), (10, 10, now), (12, 12, later)]
    # said once, when the bound is reached, not again at each step while it holds
    assert [record.message for record in caplog.records if "id gaps" in record.message] == [
        "audit sealer: more than 3 id gaps; the oldest are no longer watched"
    ]


async def gap_rows(db: Database) -> list[tuple[int, int]]:
    async with db.session() as session:
        rows = await session.execute(
            select(AuditSealGap.first_id, AuditSealGap.last_id).order_by(AuditSealGap.first_id)
        )  # type: ignore[arg-type]
        return [(int(first), int(last)) for first, last in rows.all()]


async def seal_state(db: Database) -> AuditSealState:
    async with db.session() as session:
        return (await session.execute(select(AuditSealState))).scalar_one()


async def hold_back(db: Database, event_id: int) -> dict[str, Any]:
    """An insert that got its id but commits late: the row leaves the table until `insert_late` puts it back."""
    async with maintenance(db, reason="test: hold back an event") as session:
        held = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
        await session.execute(text("DELETE FROM event WHERE id = :id"), {"id": event_id})
    return held.model_dump()


async def insert_late(db: Database, record: dict[str, Any]) -> None:
    async with db.transaction() as session:
        await session.execute(insert(Event), [record])


async def test_a_late_event_below_sealed_ones_is_sealed_at_the_end_of_the_chain(
    client: GraphQLClient, db: Database
) -> None:
    await seal_pending(db)
    ids = await add_events(db, 3)
    record = await hold_back(db, ids[1])
    await seal_pending(db)
    assert await gap_rows(db) == [(ids[1], ids[1])]
    state = await seal_state(db)
    assert (state.scan_from_id, state.max_sealed_event_id) == (ids[1] - 1, ids[2]) and state.gap_seen_at is not None
    assert await needs_sealing(db)  # the gap is watched
    # events sealed behind a watched gap: each step reads what it seals and the gap, never what was sealed since
    # (no read of the seals but through a watched gap: before, a step read every seal above the gap, and found its
    # pending events by an anti-join over every event above it)
    more = await add_events(db, 30)
    read_seals: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "event_seal" in statement and not statement.lstrip().upper().startswith("INSERT"):
            read_seals.append(" ".join(statement.split()))

    engines = [engine.sync_engine for engine in db.engines]
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", watch)
    try:
        assert await seal_pending(db, batch_size=7) == 30
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", watch)
    assert read_seals and all("audit_seal_gap" in statement for statement in read_seals), read_seals
    assert await gap_rows(db) == [(ids[1], ids[1])]
    await insert_late(db, record)
    assert await seal_pending(db) == 1
    async with db.session() as session:
        order = (await session.execute(select(EventSeal.event_id).order_by(EventSeal.seq))).scalars().all()  # type: ignore[arg-type]
    assert order[-1] == ids[1] and set(ids) | set(more) <= set(order)
    assert await gap_rows(db) == []
    state = await seal_state(db)
    assert (state.scan_from_id, state.max_sealed_event_id, state.gap_seen_at) == (more[-1], more[-1], None)
    assert not await needs_sealing(db)
    assert (await verify_chain(db)).ok


async def test_a_gap_nothing_fills_is_given_up_after_the_grace_period(client: GraphQLClient, db: Database) -> None:
    await seal_pending(db)
    ids = await add_events(db, 6)
    for event_id in (ids[1], ids[2], ids[4]):
        await hold_back(db, event_id)  # rolled back: never comes
    await seal_pending(db)
    assert await gap_rows(db) == [(ids[1], ids[2]), (ids[4], ids[4])]
    assert await seal_pending(db) == 0 and await gap_rows(db) == [(ids[1], ids[2]), (ids[4], ids[4])]
    async with db.transaction() as session:  # the grace period has passed for the first gap
        await session.execute(
            text("UPDATE audit_seal_gap SET seen_at = :at WHERE first_id = :id"),
            {"at": utcnow() - GAP_GRACE - timedelta(seconds=1), "id": ids[1]},
        )
    assert await seal_pending(db) == 0
    assert await gap_rows(db) == [(ids[4], ids[4])]
    assert (await seal_state(db)).scan_from_id == ids[4] - 1
    async with db.transaction() as session:
        await session.execute(text("UPDATE audit_seal_gap SET seen_at = :at"), {"at": utcnow() - GAP_GRACE})
    await seal_pending(db)
    state = await seal_state(db)
    assert await gap_rows(db) == [] and state.scan_from_id == state.max_sealed_event_id == ids[5]
    assert not await needs_sealing(db)
    assert (await verify_chain(db)).ok


# ---- verification finds tampering --------------------------------------------------------------


async def sealed_events(client: GraphQLClient, db: Database) -> list[int]:
    for name in ("nurse1", "nurse2", "nurse3"):
        await create_user(client, name)
    ids = await add_events(db, 5)
    await seal_pending(db)
    assert (await verify_chain(db)).ok
    return ids


async def test_verify_audit_passes_on_a_clean_database(client: GraphQLClient, db: Database) -> None:
    await sealed_events(client, db)
    await add_events(db, 2)  # pending: the command seals them first
    done = cli(db.url, "verify-audit")
    assert done.returncode == 0, done.stderr
    async with db.session() as session:
        total = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
    assert "sealed 2 pending events" in done.stdout
    assert f"ok: {total} events verified" in done.stdout


@pytest.mark.parametrize(
    ("change", "params"),
    [
        ("UPDATE event SET outcome = 'forbidden' WHERE id = :id", {}),
        ("UPDATE event SET detail = :detail WHERE id = :id", {"detail": '{"n": 99, "name": "李四"}'}),
        ("UPDATE event SET occurred_at = :when WHERE id = :id", {"when": datetime(2020, 1, 1)}),
    ],
)
async def test_an_event_edited_with_sql_is_found(
    client: GraphQLClient, db: Database, change: str, params: dict[str, Any]
) -> None:
    ids = await sealed_events(client, db)
    target = ids[2]
    async with maintenance(db, reason="test: an intruder edits an event") as session:
        await session.execute(text(change), {"id": target, **params})
    result = await verify_chain(db)
    assert not result.ok
    [problem] = result.problems
    assert (problem.kind, problem.event_id) == ("content changed", target)
    done = cli(db.url, "verify-audit")
    assert done.returncode == 1
    assert f"BROKEN: event {target}: content changed" in done.stdout
    # the database still refuses edits afterwards
    with pytest.raises(DBAPIError):
        await raw(db, "UPDATE event SET outcome = 'x' WHERE id = :id", id=target)


async def test_an_event_deleted_in_the_middle_is_found(client: GraphQLClient, db: Database) -> None:
    ids = await sealed_events(client, db)
    async with maintenance(db, reason="test: an intruder deletes an event") as session:
        await session.execute(text("DELETE FROM event WHERE id = :id"), {"id": ids[1]})
    result = await verify_chain(db)
    assert [(p.kind, p.event_id) for p in result.problems] == [("event missing", ids[1])]
    done = cli(db.url, "verify-audit", "--no-seal")
    assert done.returncode == 1
    assert f"BROKEN: event {ids[1]}: missing" in done.stdout


@pytest.mark.parametrize("page", [2, 3])
async def test_the_walk_finds_tampering_across_its_pages(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    """verify-audit reads the chain in keyset pages: with pages of 2 or 3 seals (9 events: the last page short, or
    full and followed by an empty one) the whole chain is walked and problems on either side of a page boundary
    are all found, in chain order."""
    from resolvers.audit import verify

    ids = await sealed_events(client, db)
    monkeypatch.setattr(verify, "WALK_PAGE", page)
    clean = await verify_chain(db)
    assert clean.ok and clean.events > 2 * page, clean.report()
    async with maintenance(db, reason="test: an intruder edits and deletes events") as session:
        await session.execute(
            text("UPDATE event SET outcome = 'forbidden' WHERE id IN (:a, :b)"), {"a": ids[0], "b": ids[4]}
        )
        await session.execute(text("DELETE FROM event WHERE id = :id"), {"id": ids[2]})
    result = await verify_chain(db)
    assert [(p.kind, p.event_id) for p in result.problems] == [
        ("content changed", ids[0]),
        ("event missing", ids[2]),
        ("content changed", ids[4]),
    ]
    assert result.events == clean.events


async def test_an_event_deleted_with_its_seal_breaks_the_link(client: GraphQLClient, db: Database) -> None:
    ids = await sealed_events(client, db)
    async with maintenance(db, reason="test: an intruder deletes an event and its seal") as session:
        await session.execute(text("DELETE FROM event WHERE id = :id"), {"id": ids[1]})
        await session.execute(text("DELETE FROM event_seal WHERE event_id = :id"), {"id": ids[1]})
    result = await verify_chain(db)
    kinds = [(p.kind, p.event_id) for p in result.problems]
    assert ("seal missing", ids[2]) in kinds and ("link changed", ids[2]) in kinds
    assert result.problems[0].event_id == ids[2]


async def test_a_reforged_seal_breaks_the_next_link(client: GraphQLClient, db: Database) -> None:
    """An intruder who edits an event and recomputes its seal still breaks the link of the event after it."""
    from resolvers.audit.chain import content_hash, event_record, link_hash

    ids = await sealed_events(client, db)
    async with maintenance(db, reason="test: an intruder reforges a seal") as session:
        await session.execute(text("UPDATE event SET outcome = 'forbidden' WHERE id = :id"), {"id": ids[1]})
        row = (await session.execute(select(*Event.__table__.c).where(Event.__table__.c.id == ids[1]))).mappings().one()  # type: ignore[attr-defined]
        seal = (await session.execute(select(EventSeal).where(EventSeal.event_id == ids[1]))).scalar_one()
        digest = content_hash(event_record(row))
        await session.execute(
            text("UPDATE event_seal SET content_hash = :c, chain_hash = :h WHERE event_id = :id"),
            {"c": digest, "h": link_hash(seal.prev_hash, digest), "id": ids[1]},
        )
    result = await verify_chain(db)
    assert [(p.kind, p.event_id) for p in result.problems] == [("link changed", ids[2])]


async def test_seals_removed_at_the_end_are_found(client: GraphQLClient, db: Database) -> None:
    ids = await sealed_events(client, db)
    async with maintenance(db, reason="test: an intruder cuts the tail") as session:
        await session.execute(text("DELETE FROM event WHERE id = :id"), {"id": ids[-1]})
        await session.execute(text("DELETE FROM event_seal WHERE event_id = :id"), {"id": ids[-1]})
    result = await verify_chain(db)
    assert [p.kind for p in result.problems] == ["chain tail"]


async def test_seals_added_at_the_end_are_found(client: GraphQLClient, db: Database) -> None:
    ids = await sealed_events(client, db)
    [extra] = await add_events(db, 1)
    async with db.session() as session:
        head = (await session.execute(select(EventSeal).order_by(EventSeal.seq.desc()).limit(1))).scalar_one()  # type: ignore[attr-defined]
    async with maintenance(db, reason="test: an intruder appends a seal but not the state") as session:
        digest = "f" * 64
        await session.execute(
            text(
                "INSERT INTO event_seal (event_id, seq, content_hash, prev_hash, chain_hash, sealed_at) "
                "VALUES (:id, :seq, :c, :p, :h, :at)"
            ),
            {
                "id": extra,
                "seq": head.seq + 1,
                "c": digest,
                "p": head.chain_hash,
                "h": link_hash(head.chain_hash, digest),
                "at": head.sealed_at,
            },
        )
    result = await verify_chain(db)
    assert ids and [p.kind for p in result.problems] == ["chain tail"]
    assert f"ends at #{head.seq + 1} but the seal state says #{head.seq}" in result.problems[0].message


async def test_verification_ignores_seals_committed_while_it_walks(client: GraphQLClient, db: Database) -> None:
    """verify-audit runs beside live servers: a seal step committing during the walk is not a broken tail."""
    from resolvers.audit import verify

    await sealed_events(client, db)
    await add_events(db, 30)
    pages = verify.chain_rows

    async def sealing_meanwhile(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        await seal_pending(db)  # a server's sealer commits between the state read and the walk
        async for rows in pages(*args, **kwargs):  # type: ignore[arg-type]
            yield rows

    verify.chain_rows = sealing_meanwhile  # type: ignore[assignment]
    try:
        result = await verify_chain(db)
    finally:
        verify.chain_rows = pages
    assert result.ok, result.report()
    assert (await verify_chain(db)).unsealed == 0


@pytest.mark.parametrize("settings_overrides", [{"audit_seal_interval_seconds": 0.2}])
async def test_the_background_sealer_links_reads_and_writes(client: GraphQLClient, db: Database) -> None:
    """In production the app seals in the background: reads are linked with no write after them, then writes."""

    async def all_sealed() -> None:
        for _ in range(100):  # the background pass runs at least every 0.2 s
            if not await needs_sealing(db):
                break
            await asyncio.sleep(0.1)
        async with db.session() as session:
            events = (await session.execute(select(Event.id))).scalars().all()
            sealed = (await session.execute(select(EventSeal.event_id))).scalars().all()
        assert events and sorted(sealed) == sorted(events)

    token = await client.token("physician")  # the login is a write: it wakes the sealer
    await all_sealed()
    await client.data("{ patients(first: 5) { edges { node { id } } } }", token=token)  # read events only
    async with db.session() as session:
        reads = (await session.execute(select(Event.id).where(Event.operation == "patients"))).scalars().all()
    assert len(reads) == 5
    await all_sealed()  # no write since the reads: the periodic pass linked them
    await create_user(client, "nurse9")
    await all_sealed()
    result = await verify_chain(db)
    assert result.ok and result.unsealed == 0, result.report()


async def test_a_pass_falling_behind_takes_longer_steps(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass still running after `grow_after` seconds doubles each next step (up to MAX_STEP_EVENTS): the chain is
    the same as with short steps."""
    await seal_pending(db)
    sizes: list[int] = []
    step = seal_module._seal_step_retrying

    async def recording_step(db: Database, *, batch_size: int, full: bool, hold: Any) -> int:
        sizes.append(batch_size)
        return await step(db, batch_size=batch_size, full=full, hold=hold)

    monkeypatch.setattr(seal_module, "_seal_step_retrying", recording_step)
    await add_events(db, 75)
    assert await seal_pending(db, batch_size=5, pause_ratio=0.0, grow_after=0.0) == 75
    assert sizes == [5, 10, 20, 40, 80]  # 5 + 10 + 20 + 40 = 75, and a last step that finds none
    sizes.clear()
    await add_events(db, 30)
    assert await seal_pending(db, batch_size=5, pause_ratio=0.0, grow_after=3600.0) == 30
    assert sizes == [5] * 7  # not behind: short steps (the seventh finds none)
    assert seal_module.MAX_STEP_EVENTS == seal_module.STEP_EVENTS
    result = await verify_chain(db)
    assert result.ok, result.report()
