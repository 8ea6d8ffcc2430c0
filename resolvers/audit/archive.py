"""Retention: a sealed prefix of the chain moved to a JSON Lines file, checked, and only then removed.

`archive_events` writes the file (header with the chain hash before the cut, one line per event with its hashes,
footer with the chain hash at the cut), fsyncs it, reads it back and checks it, and only then removes those rows
(through `maintenance()`), moving the cut; the archive itself is recorded as an event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from core.db import Database
from core.timeutil import as_utc, utcnow
from models.audit import GENESIS_HASH
from resolvers.audit.records import (
    EVENT,
    SEAL,
    STATE,
    AuditChainError,
    canonical_json,
    content_hash,
    event_record,
    instant,
    link_fault,
)
from resolvers.audit.seal import seal_pending
from resolvers.audit.triggers import maintenance
from resolvers.audit.verify import ARCHIVE_ACTION, chain_pages, verify_chain

log = logging.getLogger(__name__)

ARCHIVE_FORMAT = "followup-audit-archive/1"


@dataclass
class ArchiveResult:
    count: int
    first_seq: int = 0
    last_seq: int = 0
    chain_hash: str = GENESIS_HASH
    path: Path | None = None


def _json_line(value: Mapping[str, Any]) -> str:
    return canonical_json(value) + "\n"


def read_archive(path: Path) -> ArchiveResult:
    """Check an archive file on its own: every event's content hash and link, and the footer's count and cut."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2:
        raise AuditChainError(f"{path}: not an audit archive (too short)")
    header, footer = json.loads(lines[0]), json.loads(lines[-1])
    if header.get("type") != "header" or header.get("format") != ARCHIVE_FORMAT or footer.get("type") != "footer":
        raise AuditChainError(f"{path}: not an audit archive (header or footer missing)")
    prev, seq = str(header["prev_chain_hash"]), int(header["first_seq"]) - 1
    for number, line in enumerate(lines[1:-1], start=2):
        item = json.loads(line)
        problem = None
        if item.get("type") != "event" or int(item["seq"]) != seq + 1:
            problem = "out of sequence"
        elif content_hash(item["event"]) != item["content_hash"]:
            problem = "content changed"
        elif link_fault(item["content_hash"], item["prev_hash"], item["chain_hash"], prev) is not None:
            problem = "link changed"
        if problem:
            raise AuditChainError(f"{path}, line {number}: {problem}")
        seq, prev = int(item["seq"]), str(item["chain_hash"])
    count = len(lines) - 2
    if footer.get("count") != count or footer.get("last_seq") != seq or footer.get("chain_hash") != prev:
        raise AuditChainError(f"{path}: the footer does not match the events in the file")
    return ArchiveResult(count=count, first_seq=int(header["first_seq"]), last_seq=seq, chain_hash=prev, path=path)


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def archive_events(db: Database, *, before: datetime, out: Path) -> ArchiveResult:
    """Move the sealed events that occurred before `before` (a prefix of the chain) to a JSON Lines file.

    Order: seal everything, verify the whole chain (a broken chain is not archived: the evidence stays), write
    the file, fsync, read it back and check it, and only then delete those rows through `maintenance()`, move
    the cut in the state row and record an `audit_archive` event."""
    _refuse_existing(out)
    await seal_pending(db, full=True)
    verification = await verify_chain(db)
    if not verification.ok:
        raise AuditChainError(f"the chain does not verify ({verification.problems[0].message}); nothing archived")
    before = as_utc(before)
    async with db.session() as session:
        state = (await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().first()
    if state is None:
        return ArchiveResult(count=0)
    first_seq, prev = int(state["archived_seq"]) + 1, str(state["archived_chain_hash"])
    partial = out.with_name(out.name + ".partial")
    event_ids: list[int] = []
    last_seq = first_seq - 1
    with partial.open("x", encoding="utf-8") as handle:
        header = {
            "type": "header",
            "format": ARCHIVE_FORMAT,
            "before": instant(before),
            "created_at": instant(utcnow()),
            "first_seq": first_seq,
            "prev_chain_hash": prev,
        }
        handle.write(_json_line(header))
        async for rows in chain_pages(db, first_seq - 1):
            cut = next(
                (n for n, row in enumerate(rows) if row["id"] is None or as_utc(row["occurred_at"]) >= before), None
            )
            for row in rows[:cut]:
                item = {
                    "type": "event",
                    "seq": int(row["seq"]),
                    "event": event_record(row),
                    "content_hash": row["content_hash"],
                    "prev_hash": row["prev_hash"],
                    "chain_hash": row["chain_hash"],
                    "sealed_at": instant(row["sealed_at"]),
                }
                handle.write(_json_line(item))
                event_ids.append(int(row["id"]))
                last_seq, prev = int(row["seq"]), str(row["chain_hash"])
            if cut is not None:
                break
        handle.write(_json_line({"type": "footer", "count": len(event_ids), "last_seq": last_seq, "chain_hash": prev}))
        handle.flush()
        os.fsync(handle.fileno())
    if not event_ids:
        partial.unlink()
        return ArchiveResult(count=0)
    partial.rename(out)
    _fsync_dir(out.parent)
    written = read_archive(out)
    if (written.count, written.first_seq, written.last_seq, written.chain_hash) != (
        len(event_ids),
        first_seq,
        last_seq,
        prev,
    ):
        raise AuditChainError(f"{out} does not read back as written; nothing removed")
    file_sha256 = _file_sha256(out)
    reason = f"archive-audit: events #{first_seq}..#{last_seq} to {out.name}"
    async with maintenance(db, reason=reason) as session:
        await session.execute(update(STATE).where(STATE.c.id == 1).values(updated_at=utcnow()))  # the sealer's lock
        current = (await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().one()
        if int(current["archived_seq"]) != first_seq - 1:
            raise AuditChainError("another archive ran at the same time; nothing removed here")
        for chunk in _chunks(event_ids):
            await session.execute(EVENT.delete().where(EVENT.c.id.in_(chunk)))
        await session.execute(SEAL.delete().where(SEAL.c.seq >= first_seq, SEAL.c.seq <= last_seq))
        await session.execute(
            update(STATE).where(STATE.c.id == 1).values(archived_seq=last_seq, archived_chain_hash=prev)
        )
        await session.execute(
            insert(EVENT).values(
                occurred_at=utcnow(),
                actor_id=None,
                action=ARCHIVE_ACTION,
                operation="archive-audit",
                entity_type="Event",
                entity_id="",
                patient_id=None,
                request_id="",
                ip="cli",
                outcome="success",
                detail={
                    "through_seq": last_seq,
                    "from_seq": first_seq,
                    "chain_hash": prev,
                    "count": len(event_ids),
                    "before": instant(before),
                    "file": out.name,
                    "file_sha256": file_sha256,
                },
            )
        )
    log.warning("%s: %d events archived and removed", reason, len(event_ids))
    await seal_pending(db)
    return written


def _refuse_existing(out: Path) -> None:
    if out.exists() or out.with_name(out.name + ".partial").exists():
        raise AuditChainError(f"{out} exists: an archive is never overwritten")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
