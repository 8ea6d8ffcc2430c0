"""The tamper-evident audit trail: append-only triggers, the hash chain sealed in order, verification, retention.

- The `event` and `event_seal` tables refuse UPDATE and DELETE in the database itself (triggers, created by
  migration 0007_audit_chain). The only way around them is `maintenance()` (the operator's archive command,
  the test reset), which logs what it does.
- Events are inserted as before, unchained, so concurrent writers never wait for each other. The sealer
  (`seal_pending`) links the new ones in id order in one short step under a lock on the single
  `audit_seal_state` row: content_hash = sha256(canonical JSON of the event), chain_hash =
  sha256(prev_chain_hash + content_hash), `seq` = position in the chain. It runs after each write unit
  (only when there is something to seal) and before `verify-audit` / `archive-audit`.
- `verify_chain` walks the chain from the archived cut and reports every broken link, first one first.
- `archive_events` writes a sealed prefix of the chain to a JSON Lines file, checks the file, and only then
  removes those rows (through `maintenance()`), moving the cut; the archive itself is recorded as an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.timeutil import as_utc, utcnow
from models.audit import GENESIS_HASH, AuditSealState, Event, EventSeal

log = logging.getLogger(__name__)

EVENT = Event.__table__  # type: ignore[attr-defined]
SEAL = EventSeal.__table__  # type: ignore[attr-defined]
STATE = AuditSealState.__table__  # type: ignore[attr-defined]

APPEND_ONLY_TABLES = ("event", "event_seal")
ARCHIVE_FORMAT = "followup-audit-archive/1"
ARCHIVE_ACTION = "audit_archive"
# An id gap below sealed events is an insert still in flight (MariaDB commits out of id order) or a rolled-back
# one. The per-request sealer looks back over a gap this long before treating it as permanent; a late event
# after that is still sealed by the full sweep of verify-audit / archive-audit.
GAP_GRACE = timedelta(seconds=120)
CONTENT_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "action",
    "operation",
    "entity_type",
    "entity_id",
    "patient_id",
    "request_id",
    "ip",
    "outcome",
    "detail",
)


class AuditChainError(RuntimeError):
    """The chain cannot be sealed or archived as asked (nothing was changed)."""


# ---- append-only triggers ----------------------------------------------------------------------


def _trigger_name(table: str, operation: str) -> str:
    return f"{table}_append_only_{operation.lower()}"


def create_trigger_statements(dialect: str) -> list[str]:
    """CREATE TRIGGER statements refusing UPDATE and DELETE on the append-only tables (used by the migration)."""
    statements = []
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            name = _trigger_name(table, operation)
            if dialect == "sqlite":
                body = f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            elif dialect in ("mysql", "mariadb"):
                body = f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{table} is append-only'"
            else:
                raise AuditChainError(f"no append-only triggers for the {dialect} dialect")
            statements.append(f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {table} {body}")
    return statements


def drop_trigger_statements() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {_trigger_name(table, operation)}"
        for table in APPEND_ONLY_TABLES
        for operation in ("UPDATE", "DELETE")
    ]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def suspend_append_only(session: AsyncSession, *, reason: str = "maintenance") -> None:
    """Drop the append-only triggers. Maintenance only (archive, test reset); always paired with
    `restore_append_only`. On MariaDB this DDL commits the session's open transaction."""
    log.warning("audit maintenance: append-only triggers on %s suspended (%s)", ", ".join(APPEND_ONLY_TABLES), reason)
    for statement in drop_trigger_statements():
        await session.execute(text(statement))


async def restore_append_only(session: AsyncSession) -> None:
    for statement in create_trigger_statements(_dialect(session)):
        await session.execute(text(statement))
    log.warning("audit maintenance: append-only triggers restored")


@asynccontextmanager
async def maintenance(db: Database, *, reason: str) -> AsyncIterator[AsyncSession]:
    """A transaction in which the append-only tables accept UPDATE and DELETE; the triggers come back after it,
    whatever happens. On SQLite it is one transaction (the triggers are never missing for anyone else); on
    MariaDB trigger DDL commits, so the triggers are dropped just before the transaction and restored after."""
    if db.dialect == "sqlite":
        async with db.transaction() as session:
            await suspend_append_only(session, reason=reason)
            yield session
            await restore_append_only(session)
        return
    async with db.transaction() as session:
        await suspend_append_only(session, reason=reason)
    try:
        async with db.transaction() as session:
            yield session
    finally:
        async with db.transaction() as session:
            await restore_append_only(session)


# ---- hashing -----------------------------------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an event that the content hash covers, as JSON values (also the archive's event object)."""
    record = {name: row[name] for name in CONTENT_FIELDS}
    record["occurred_at"] = _instant(row["occurred_at"])
    return record


def content_hash(record: Mapping[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def link_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode("ascii")).hexdigest()


# ---- sealing -----------------------------------------------------------------------------------


@asynccontextmanager
async def _locked_state(db: Database) -> AsyncIterator[tuple[AsyncSession, dict[str, Any]]]:
    """A transaction holding the lock on the seal state row (created on first use).

    The first statement is an UPDATE of that row: on MariaDB a row lock, on SQLite the database write lock
    taken at once (a transaction that starts with a write behaves as BEGIN IMMEDIATE). Released at commit."""
    async with db.sessionmaker() as session:
        if db.dialect != "sqlite":  # read what others committed before we got the lock (this begins the transaction)
            await session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        try:
            now = utcnow()
            result = await session.execute(update(STATE).where(STATE.c.id == 1).values(updated_at=now))
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


def _advance_scan(
    scan_from: int, sealed_ids: Sequence[int], gap_seen_at: datetime | None, now: datetime
) -> tuple[int, datetime | None]:
    """Move the scan position over contiguously sealed ids; wait GAP_GRACE at a gap before stepping over it."""
    expected = scan_from + 1
    stopped = False
    for event_id in sealed_ids:
        if event_id < expected:
            continue
        if event_id == expected:
            expected += 1
            continue
        if gap_seen_at is not None and now - as_utc(gap_seen_at) >= GAP_GRACE:
            expected, gap_seen_at = event_id + 1, None  # a rolled-back insert: nothing will fill it
            continue
        stopped = True
        break
    position = expected - 1
    if not stopped:
        return position, None
    if position == scan_from and gap_seen_at is not None:
        return position, gap_seen_at
    return position, now


async def _seal_step(db: Database, *, batch_size: int, full: bool) -> int:
    async with _locked_state(db) as (session, state):
        now = utcnow()
        low = 0 if full else int(state["scan_from_id"])
        pending = (
            (
                await session.execute(
                    select(*EVENT.c)
                    .select_from(EVENT.outerjoin(SEAL, SEAL.c.event_id == EVENT.c.id))
                    .where(EVENT.c.id > low, SEAL.c.event_id.is_(None))
                    .order_by(EVENT.c.id)
                    .limit(batch_size)
                )
            )
            .mappings()
            .all()
        )
        seq, prev = int(state["last_seq"]), str(state["last_chain_hash"])
        seals = []
        for row in pending:
            digest = content_hash(event_record(row))
            chain = link_hash(prev, digest)
            seq += 1
            seals.append(
                {
                    "event_id": row["id"],
                    "seq": seq,
                    "content_hash": digest,
                    "prev_hash": prev,
                    "chain_hash": chain,
                    "sealed_at": now,
                }
            )
            prev = chain
        if seals:
            await session.execute(insert(SEAL), seals)
        scan_from = int(state["scan_from_id"])
        new_ids = [int(item["event_id"]) for item in seals]
        if scan_from == int(state["max_sealed_event_id"]) and new_ids == list(
            range(scan_from + 1, scan_from + 1 + len(new_ids))
        ):
            sealed_ids: Sequence[int] = new_ids  # the usual case: no gap watched, the new ids follow on
        else:
            sealed_ids = (
                (
                    await session.execute(
                        select(SEAL.c.event_id).where(SEAL.c.event_id > scan_from).order_by(SEAL.c.event_id)
                    )
                )
                .scalars()
                .all()
            )
        new_scan_from, gap_seen_at = _advance_scan(scan_from, sealed_ids, state["gap_seen_at"], now)
        max_sealed = max([int(state["max_sealed_event_id"]), *(int(s["event_id"]) for s in seals)])
        await session.execute(
            update(STATE)
            .where(STATE.c.id == 1)
            .values(
                last_seq=seq,
                last_chain_hash=prev,
                max_sealed_event_id=max_sealed,
                scan_from_id=new_scan_from,
                gap_seen_at=gap_seen_at,
            )
        )
        return len(seals)


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


async def seal_pending(
    db: Database, *, batch_size: int = 1000, max_batches: int | None = None, full: bool = False
) -> int:
    """Seal unsealed events in id order, `batch_size` per short locked step; returns how many were sealed.

    `full` sweeps the whole table for unsealed events (late inserts past the grace period included)."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        try:
            sealed = await _seal_step(db, batch_size=batch_size, full=full)
        except IntegrityError:  # another instance created the state row (or sealed) at the same moment
            sealed = await _seal_step(db, batch_size=batch_size, full=full)
        total += sealed
        batches += 1
        if sealed < batch_size:
            break
    return total


class Sealer:
    """Links new events into the audit chain in the background, so that no request waits for it.

    Woken when a write commits, and every `interval` seconds for the events of reads (which used to wait
    for the next write). Each pass seals everything pending, in short locked steps (`seal_pending`);
    several instances may run one each: the lock on the seal state row orders them. With `interval` 0
    there is no task: each write seals inline before its response (the tests use this, for determinism).
    """

    def __init__(self, db: Database, *, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def inline(self) -> bool:
        return self.interval <= 0

    async def start(self) -> None:
        if not self.inline and self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-sealer")

    async def after_write(self) -> None:
        """A write unit committed: wake the background pass, or (inline) seal one batch before answering."""
        if self.inline:
            await self.seal_now(max_batches=1)  # a write never waits for a long backlog of reads
        else:
            self._wake.set()

    async def seal_now(self, *, max_batches: int | None = None) -> int:
        """Seal what is pending; never raises (the events stay unsealed until the next pass)."""
        try:
            if await needs_sealing(self.db):
                return await seal_pending(self.db, max_batches=max_batches)
        except Exception:
            log.exception("audit sealing failed; the events stay unsealed until the next pass")
        return 0

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await self.seal_now()

    async def stop(self) -> None:
        """Stop the task, then seal what the last requests left (shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.seal_now()


# ---- verification ------------------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # content changed | link changed | event missing | seal missing | chain tail | state | archive cut
    message: str
    event_id: int | None = None
    seq: int | None = None


@dataclass
class Verification:
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    archived_seq: int = 0
    unsealed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        if self.ok:
            line = f"ok: {self.events} events verified (chain head #{self.head_seq} {self.head_hash}"
            line += f", archived through #{self.archived_seq})" if self.archived_seq else ")"
            if self.unsealed:
                line += f"; {self.unsealed} events not sealed yet"
            return line
        first = self.problems[0]
        lines = [f"BROKEN: {first.message}"]
        lines += [f"  also: {problem.message}" for problem in self.problems[1:20]]
        if len(self.problems) > 20:
            lines.append(f"  ... {len(self.problems) - 20} more")
        lines.append(f"{len(self.problems)} problems; {self.events} seals walked")
        return "\n".join(lines)


def _chain_rows_statement(after_seq: int, limit: int) -> Any:
    return (
        select(
            SEAL.c.seq,
            SEAL.c.event_id.label("seal_event_id"),
            SEAL.c.content_hash,
            SEAL.c.prev_hash,
            SEAL.c.chain_hash,
            SEAL.c.sealed_at,
            *EVENT.c,
        )
        .select_from(SEAL.outerjoin(EVENT, EVENT.c.id == SEAL.c.event_id))
        .where(SEAL.c.seq > after_seq)
        .order_by(SEAL.c.seq)
        .limit(limit)
    )


def _check_link(
    row: Mapping[str, Any], expected_seq: int, expected_prev: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """Check one chain position; returns the event's record (None when the event row is gone)."""
    seq, event_id = int(row["seq"]), int(row["seal_event_id"])
    if seq != expected_seq:
        problems.append(
            Problem(
                "seal missing",
                f"event {event_id}: seals #{expected_seq}..#{seq - 1} before it are missing (deleted seal rows)",
                event_id,
                seq,
            )
        )
    record = None
    if row["id"] is None:
        problems.append(
            Problem("event missing", f"event {event_id}: missing (sealed as #{seq}, the row is gone)", event_id, seq)
        )
    else:
        record = event_record(row)
        if content_hash(record) != row["content_hash"]:
            problems.append(
                Problem(
                    "content changed", f"event {event_id}: content changed since it was sealed (#{seq})", event_id, seq
                )
            )
    if row["prev_hash"] != expected_prev:
        problems.append(
            Problem(
                "link changed",
                f"event {event_id}: link changed (seal #{seq} does not follow the chain before it)",
                event_id,
                seq,
            )
        )
    elif row["chain_hash"] != link_hash(row["prev_hash"], row["content_hash"]):
        problems.append(
            Problem(
                "link changed",
                f"event {event_id}: link changed (seal #{seq}: chain_hash is not sha256(prev_hash + content_hash))",
                event_id,
                seq,
            )
        )
    return record


async def verify_chain(db: Database, *, batch_size: int = 2000) -> Verification:
    """Walk the chain from the archived cut; every broken link is listed, in chain order."""
    result = Verification()
    async with db.session() as session:
        state = (await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().first()
        result.unsealed = int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(EVENT.outerjoin(SEAL, SEAL.c.event_id == EVENT.c.id))
                    .where(SEAL.c.event_id.is_(None))
                )
            ).scalar_one()
        )
        if state is None:
            if (await session.execute(select(SEAL.c.seq).limit(1))).first() is not None:
                result.problems.append(Problem("state", "the seal state row is missing while seals exist"))
            return result
        result.archived_seq = int(state["archived_seq"])
        expected_seq, expected_prev = result.archived_seq + 1, str(state["archived_chain_hash"])
        after = result.archived_seq  # seals missing at the start show up as "seal missing" on the first row
        while True:
            rows = (await session.execute(_chain_rows_statement(after, batch_size))).mappings().all()
            for row in rows:
                _check_link(row, expected_seq, expected_prev, result.problems)
                expected_seq, expected_prev = int(row["seq"]) + 1, str(row["chain_hash"])
                result.events += 1
            if len(rows) < batch_size:
                break
            after = int(rows[-1]["seq"])
        result.head_seq, result.head_hash = expected_seq - 1, expected_prev
        if int(state["last_seq"]) != result.head_seq or state["last_chain_hash"] != result.head_hash:
            result.problems.append(
                Problem(
                    "chain tail",
                    f"the chain ends at #{result.head_seq} but the seal state says #{state['last_seq']}: "
                    "seals at the end were removed or added",
                    seq=result.head_seq,
                )
            )
        if result.archived_seq:
            await _check_archive_cut(session, state, result)
    return result


async def _check_archive_cut(session: AsyncSession, state: Mapping[str, Any], result: Verification) -> None:
    """The archived cut in the state row must be the one the latest archive event recorded."""
    detail = (
        await session.execute(
            select(EVENT.c.detail).where(EVENT.c.action == ARCHIVE_ACTION).order_by(EVENT.c.id.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if (
        not isinstance(detail, dict)
        or detail.get("through_seq") != state["archived_seq"]
        or detail.get("chain_hash") != state["archived_chain_hash"]
    ):
        result.problems.append(
            Problem(
                "archive cut",
                f"the archived cut (#{state['archived_seq']}) is not the one recorded by the latest archive event",
            )
        )


# ---- retention ---------------------------------------------------------------------------------


@dataclass
class ArchiveResult:
    count: int
    first_seq: int = 0
    last_seq: int = 0
    chain_hash: str = GENESIS_HASH
    path: Path | None = None


def _json_line(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"


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
        elif item["prev_hash"] != prev or item["chain_hash"] != link_hash(prev, item["content_hash"]):
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
    the file (header with the chain hash before the cut, one line per event with its hashes, footer with the
    chain hash at the cut), fsync, read it back and check it, and only then delete those rows through
    `maintenance()`, move the cut in the state row and record an `audit_archive` event."""
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
    last_seq, after = first_seq - 1, first_seq - 1
    with partial.open("x", encoding="utf-8") as handle:
        header = {
            "type": "header",
            "format": ARCHIVE_FORMAT,
            "before": _instant(before),
            "created_at": _instant(utcnow()),
            "first_seq": first_seq,
            "prev_chain_hash": prev,
        }
        handle.write(_json_line(header))
        done = False
        while not done:
            async with db.session() as session:
                rows = (await session.execute(_chain_rows_statement(after, 2000))).mappings().all()
            for row in rows:
                if row["id"] is None or as_utc(row["occurred_at"]) >= before:
                    done = True
                    break
                item = {
                    "type": "event",
                    "seq": int(row["seq"]),
                    "event": event_record(row),
                    "content_hash": row["content_hash"],
                    "prev_hash": row["prev_hash"],
                    "chain_hash": row["chain_hash"],
                    "sealed_at": _instant(row["sealed_at"]),
                }
                handle.write(_json_line(item))
                event_ids.append(int(row["id"]))
                last_seq, prev = int(row["seq"]), str(row["chain_hash"])
            if len(rows) < 2000:
                done = True
            elif rows:
                after = int(rows[-1]["seq"])
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
                    "before": _instant(before),
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
