"""Verification: walk the chain from the archived cut and report every broken link, first one first."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from models.audit import GENESIS_HASH
from resolvers.audit.records import (
    EVENT,
    SEAL,
    STATE,
    canonical_bytes,
    driver_record_maker,
    link_fault,
    link_hash,
)
from resolvers.audit.seal import count_unsealed

ARCHIVE_ACTION = "audit_archive"
CHAIN_PAGE = 2000  # chain_pages (the archive)
WALK_PAGE = 10_000  # chain_rows (verify-audit): driver tuples, a few MB a page


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


async def chain_pages(
    source: Database | AsyncSession, after_seq: int, *, through_seq: int | None = None
) -> AsyncIterator[list[Mapping[str, Any]]]:
    """The chain after `after_seq` (up to `through_seq`) in seq order, a page at a time: each seal with its event's
    columns (None when the event row is gone). From one session, or from a database a short session per page."""
    while True:
        statement = (
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
            .where(SEAL.c.seq > after_seq, *([] if through_seq is None else [SEAL.c.seq <= through_seq]))
            .order_by(SEAL.c.seq)
            .limit(CHAIN_PAGE)
        )
        rows: list[Mapping[str, Any]]
        if isinstance(source, AsyncSession):
            rows = list((await source.execute(statement)).mappings().all())
        else:
            async with source.session() as session:
                rows = list((await session.execute(statement)).mappings().all())
        if rows:
            yield rows
        if len(rows) < CHAIN_PAGE:
            return
        after_seq = int(rows[-1]["seq"])


_WALK_SEAL = ("seq", "seal_event_id", "content_hash", "prev_hash", "chain_hash")
_WALK_SQL: dict[str, tuple[str, tuple[str, ...], dict[str, Any], Callable[[Sequence[Any]], dict[str, Any]]]] = {}


def _walk_sql(
    dialect: Dialect,
) -> tuple[str, tuple[str, ...], dict[str, Any], Callable[[Sequence[Any]], dict[str, Any]]]:
    """The walk's statement compiled for the dialect (its SQL, parameter order and defaults) and its record maker."""
    cached = _WALK_SQL.get(dialect.name)
    if cached is None:
        statement = (
            select(SEAL.c.seq, SEAL.c.event_id, SEAL.c.content_hash, SEAL.c.prev_hash, SEAL.c.chain_hash, *EVENT.c)
            .select_from(SEAL.outerjoin(EVENT, EVENT.c.id == SEAL.c.event_id))
            .where(SEAL.c.seq > bindparam("after"), SEAL.c.seq <= bindparam("through"))
            .order_by(SEAL.c.seq)
            .limit(bindparam("size"))
        )
        compiled = statement.compile(dialect=dialect)
        occurred_at = EVENT.c.occurred_at.type._cached_result_processor(dialect, None)
        make = driver_record_maker((*_WALK_SEAL, *EVENT.c.keys()), occurred_at)
        order = tuple(compiled.positiontup or ())
        cached = _WALK_SQL[dialect.name] = (compiled.string, order, dict(compiled.params), make)
    return cached


async def chain_rows(session: AsyncSession, after_seq: int, through_seq: int) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The walk's rows: the chain after `after_seq` through `through_seq` in seq order, WALK_PAGE at a time (keyset
    pages), each row the driver's own tuple (no SQLAlchemy row processing, which was most of the walk's CPU): the
    seal's _WALK_SEAL columns, then the event's (None when the event row is gone)."""
    connection = await session.connection()
    sql, order, defaults, _ = _walk_sql(connection.dialect)
    while True:
        params = {**defaults, "after": after_seq, "through": through_seq, "size": WALK_PAGE}
        rows = (await connection.exec_driver_sql(sql, tuple(params[name] for name in order))).all()
        if rows:
            yield rows
        if len(rows) < WALK_PAGE:
            return
        after_seq = int(rows[-1][0])


def _link_problems(
    row: Sequence[Any], digest: str | None, expected_seq: int, expected_prev: str, problems: list[Problem]
) -> None:
    """What is wrong at one chain position (`digest`: its event's content hash now, None when the row is gone)."""
    seq, event_id, content, prev_hash, chain_hash = int(row[0]), int(row[1]), row[2], row[3], row[4]
    if seq != expected_seq:
        problems.append(
            Problem(
                "seal missing",
                f"event {event_id}: seals #{expected_seq}..#{seq - 1} before it are missing (deleted seal rows)",
                event_id,
                seq,
            )
        )
    if digest is None:
        problems.append(
            Problem("event missing", f"event {event_id}: missing (sealed as #{seq}, the row is gone)", event_id, seq)
        )
    elif digest != content:
        problems.append(
            Problem("content changed", f"event {event_id}: content changed since it was sealed (#{seq})", event_id, seq)
        )
    fault = link_fault(content, prev_hash, chain_hash, expected_prev)
    if fault is not None:
        separator = " " if fault.startswith("does") else ": "
        problems.append(
            Problem("link changed", f"event {event_id}: link changed (seal #{seq}{separator}{fault})", event_id, seq)
        )


def _walk_page(
    rows: Sequence[Sequence[Any]],
    make: Callable[[Sequence[Any]], dict[str, Any]],
    expected_seq: int,
    expected_prev: str,
    problems: list[Problem],
) -> tuple[int, str]:
    """Check a page of the walk; returns the (seq, prev hash) the next row must have. The usual row costs its
    record, one canonical_bytes, two sha256 and a few comparisons; a row that fails any is looked at again by
    _link_problems, which says what is wrong."""
    sha256 = hashlib.sha256
    event_id_at = len(_WALK_SEAL)
    for row in rows:
        digest = None if row[event_id_at] is None else sha256(canonical_bytes(make(row))).hexdigest()
        seq, content, prev_hash, chain_hash = row[0], row[2], row[3], row[4]
        if (
            seq != expected_seq
            or digest != content
            or prev_hash != expected_prev
            or chain_hash != link_hash(prev_hash, content)
        ):
            _link_problems(row, digest, expected_seq, expected_prev, problems)
        expected_seq, expected_prev = int(seq) + 1, str(chain_hash)
    return expected_seq, expected_prev


async def verify_chain(db: Database) -> Verification:
    """Walk the chain from the archived cut; every broken link is listed, in chain order."""
    result = Verification()
    async with db.session() as session:
        state = (await session.execute(select(STATE).where(STATE.c.id == 1))).mappings().first()
        result.unsealed = int((await session.execute(count_unsealed())).scalar_one())
        if state is None:
            if (await session.execute(select(SEAL.c.seq).limit(1))).first() is not None:
                result.problems.append(Problem("state", "the seal state row is missing while seals exist"))
            return result
        result.archived_seq = int(state["archived_seq"])
        expected_seq, expected_prev = result.archived_seq + 1, str(state["archived_chain_hash"])
        # The walk stops at the head the state row named when read: a seal step may commit meanwhile (a server
        # seals while verify-audit runs; on SQLite each statement reads its own snapshot), and its seals are not
        # this walk's. Seals missing at the start show up as "seal missing" on the first row.
        last_seq = int(state["last_seq"])
        make = _walk_sql((await session.connection()).dialect)[3]
        async for rows in chain_rows(session, result.archived_seq, last_seq):
            expected_seq, expected_prev = _walk_page(rows, make, expected_seq, expected_prev, result.problems)
            result.events += len(rows)
        result.head_seq, result.head_hash = expected_seq - 1, expected_prev
        # seals past the state's head, read with the state in one statement (one snapshot): added behind its back
        now_last, beyond = (
            await session.execute(
                select(STATE.c.last_seq, select(func.max(SEAL.c.seq)).scalar_subquery()).where(STATE.c.id == 1)
            )
        ).one()
        ends_at = max(result.head_seq, int(beyond or 0)) if int(beyond or 0) > int(now_last) else result.head_seq
        if last_seq != ends_at or state["last_chain_hash"] != result.head_hash:
            result.problems.append(
                Problem(
                    "chain tail",
                    f"the chain ends at #{ends_at} but the seal state says #{last_seq}: "
                    "seals at the end were removed or added",
                    seq=ends_at,
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
