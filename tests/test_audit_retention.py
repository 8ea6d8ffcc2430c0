"""Retention: `archive-audit` moves old sealed events with their hashes to a JSON Lines file, removes them only
after the file is written and checked, and the chain still verifies from the archived cut (SQLite and MariaDB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core.db import Database
from models.audit import AuditSealState, Event, EventSeal
from resolvers.audit.chain import (
    ARCHIVE_ACTION,
    AuditChainError,
    archive_events,
    maintenance,
    read_archive,
    seal_pending,
    verify_chain,
)
from tests.conftest import GraphQLClient
from tests.test_audit_chain import add_events, cli, create_user, raw

OLD = datetime(2020, 3, 1, 8, 0, tzinfo=UTC)
CUT = datetime(2021, 1, 1, tzinfo=UTC)


@pytest.fixture
async def history(client: GraphQLClient, db: Database) -> tuple[list[int], list[int]]:
    """A chain that starts with 6 events of 2020, then today's: (old ids, recent ids)."""
    async with maintenance(db, reason="test: start from an empty audit trail") as session:
        for table in ("event", "event_seal", "audit_seal_state", "audit_seal_gap"):
            await session.execute(text(f"DELETE FROM {table}"))
    old = await add_events(db, 6, when=OLD)
    await seal_pending(db)
    await create_user(client, "nurse1")
    async with db.session() as session:
        recent = (await session.execute(select(Event.id).where(Event.id > old[-1]).order_by(Event.id))).scalars().all()  # type: ignore[arg-type, operator]
    assert (await verify_chain(db)).ok
    return old, [int(i) for i in recent if i is not None]


async def event_ids(db: Database) -> list[int]:
    async with db.session() as session:
        return [int(i) for i in (await session.execute(select(Event.id).order_by(Event.id))).scalars().all()]  # type: ignore[arg-type]


async def test_archive_writes_the_old_events_then_removes_them_and_the_chain_still_verifies(
    history: tuple[list[int], list[int]], db: Database, tmp_path: Path
) -> None:
    old, recent = history
    out = tmp_path / "audit-2020.jsonl"
    result = await archive_events(db, before=CUT, out=out)
    assert (result.count, result.first_seq, result.last_seq) == (6, 1, 6)

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    header, items, footer = lines[0], lines[1:-1], lines[-1]
    assert header["type"] == "header" and header["first_seq"] == 1 and header["prev_chain_hash"] == "0" * 64
    assert [item["event"]["id"] for item in items] == old
    assert all(item["event"]["occurred_at"].startswith("2020-03-01T08:00:00") for item in items)
    assert items[0]["event"]["detail"] == {"n": 0, "name": "张三"}
    assert footer == {"type": "footer", "count": 6, "last_seq": 6, "chain_hash": items[-1]["chain_hash"]}
    assert read_archive(out).chain_hash == footer["chain_hash"]

    remaining = await event_ids(db)
    assert not set(old) & set(remaining) and set(recent) <= set(remaining)
    async with db.session() as session:
        state = (await session.execute(select(AuditSealState))).scalar_one()
        archive_event = (await session.execute(select(Event).where(Event.action == ARCHIVE_ACTION))).scalar_one()
        first_seal = (await session.execute(select(func.min(EventSeal.seq)))).scalar_one()
    assert (state.archived_seq, state.archived_chain_hash) == (6, footer["chain_hash"])
    assert archive_event.detail is not None and archive_event.detail["count"] == 6
    assert archive_event.detail["chain_hash"] == footer["chain_hash"]
    assert first_seal == 7
    verified = await verify_chain(db)
    assert verified.ok, verified.report()
    assert verified.events == len(remaining) and verified.archived_seq == 6  # the archive event is sealed too
    # the append-only triggers are back
    with pytest.raises(DBAPIError):
        await raw(db, "DELETE FROM event WHERE id = :id", id=recent[0])


async def test_archive_and_verify_from_the_command_line(
    history: tuple[list[int], list[int]], db: Database, tmp_path: Path
) -> None:
    old, _recent = history
    out = tmp_path / "audit.jsonl"
    done = cli(db.url, "archive-audit", "--before", "2021-01-01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"archived 6 events to {out}" in done.stdout
    assert [json.loads(line)["event"]["id"] for line in out.read_text(encoding="utf-8").splitlines()[1:-1]] == old
    verified = cli(db.url, "verify-audit")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "archived through #6" in verified.stdout
    # a second archive with nothing old left removes nothing and writes nothing
    again = cli(db.url, "archive-audit", "--before", "2021-01-01", "--out", str(tmp_path / "again.jsonl"))
    assert again.returncode == 0 and "nothing archived" in again.stdout
    assert not (tmp_path / "again.jsonl").exists()
    # an existing archive is never overwritten
    refused = cli(db.url, "archive-audit", "--before", "2099-01-01", "--out", str(out))
    assert refused.returncode != 0 and "never overwritten" in refused.stderr


async def test_two_archives_in_a_row_continue_the_chain(
    history: tuple[list[int], list[int]], db: Database, tmp_path: Path
) -> None:
    first = await archive_events(db, before=CUT, out=tmp_path / "one.jsonl")
    await add_events(db, 3)
    second = await archive_events(db, before=datetime(2099, 1, 1, tzinfo=UTC), out=tmp_path / "two.jsonl")
    header = json.loads((tmp_path / "two.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert header["first_seq"] == first.last_seq + 1 and header["prev_chain_hash"] == first.chain_hash
    assert second.count > 3
    remaining = await event_ids(db)
    assert len(remaining) == 1  # the second archive's own event, sealed after the cut
    verified = await verify_chain(db)
    assert verified.ok and verified.archived_seq == second.last_seq, verified.report()


async def test_a_broken_chain_is_not_archived(
    history: tuple[list[int], list[int]], db: Database, tmp_path: Path
) -> None:
    old, _recent = history
    async with maintenance(db, reason="test: an intruder edits an old event") as session:
        await session.execute(text("UPDATE event SET outcome = 'forbidden' WHERE id = :id"), {"id": old[3]})
    with pytest.raises(AuditChainError, match=f"event {old[3]}: content changed"):
        await archive_events(db, before=CUT, out=tmp_path / "a.jsonl")
    assert not (tmp_path / "a.jsonl").exists()
    assert set(old) <= set(await event_ids(db))


async def test_an_edited_archive_file_is_found(
    history: tuple[list[int], list[int]], db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "a.jsonl"
    await archive_events(db, before=CUT, out=out)
    lines = out.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[2])
    item["event"]["outcome"] = "forbidden"
    lines[2] = json.dumps(item)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(AuditChainError, match="line 3: content changed"):
        read_archive(out)


async def test_a_moved_cut_is_found(history: tuple[list[int], list[int]], db: Database, tmp_path: Path) -> None:
    """Deleting old events and moving the cut in the state row by hand is not an archive."""
    old, _recent = history
    async with db.session() as session:
        seal = (await session.execute(select(EventSeal).where(EventSeal.event_id == old[1]))).scalar_one()
    async with maintenance(db, reason="test: an intruder drops the oldest events") as session:
        await session.execute(text("DELETE FROM event WHERE id <= :id"), {"id": old[1]})
        await session.execute(text("DELETE FROM event_seal WHERE seq <= :seq"), {"seq": seal.seq})
        await session.execute(
            text("UPDATE audit_seal_state SET archived_seq = :seq, archived_chain_hash = :hash"),
            {"seq": seal.seq, "hash": seal.chain_hash},
        )
    result = await verify_chain(db)
    assert [p.kind for p in result.problems] == ["archive cut"]
