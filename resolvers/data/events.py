"""Read events: one audit event per patient whose record a request read, written as multi-row inserts."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam

from core.timeutil import utcnow
from models.audit import Event
from resolvers.audit.chain import CONTENT_FIELDS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from resolvers.data.context import Context

# What a read event sets: every content field of an event but its id and the free-form detail.
_EVENT_COLUMNS = tuple(name for name in CONTENT_FIELDS if name not in ("id", "detail"))
_EVENTS_PER_INSERT = 100  # a page at most (resolvers/data/pagination.py)
_EVENT_SQL: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}


async def _execute(sql: str, params: tuple[Any, ...], connection: AsyncConnection) -> None:
    await connection.exec_driver_sql(sql, params)


def _events_insert(dialect: Any, rows: int) -> tuple[str, dict[str, Any]]:
    """The SQL of one INSERT of `rows` events with a VALUES list each, and each column's bind processor.

    One statement rather than an executemany: a driver may run an executemany of an INSERT as a bulk
    operation (asyncmy's COM_STMT_BULK_EXECUTE on MariaDB) for which the server may skip auto-increment
    ids, and the audit chain (resolvers/audit/chain.py) watches gaps in event ids as possibly uncommitted
    events. A multi-row VALUES list takes consecutive ids. Sent as the driver's own SQL, values processed
    as SQLAlchemy would process them: hundreds of bind parameters are costly to route through a compiled
    statement on every page."""
    key = (dialect.name, dialect.paramstyle, rows)
    cached = _EVENT_SQL.get(key)
    if cached is None:
        table = Event.__table__  # type: ignore[attr-defined]
        statement = table.insert().values(
            [{name: bindparam(f"{name}_{i}", type_=table.c[name].type) for name in _EVENT_COLUMNS} for i in range(rows)]
        )
        compiled = statement.compile(dialect=dialect)
        # positional, row by row, in _EVENT_COLUMNS order: what record_reads sends
        assert list(compiled.positiontup or ()) == [f"{name}_{i}" for i in range(rows) for name in _EVENT_COLUMNS]
        processors = {name: table.c[name].type._cached_bind_processor(dialect) for name in _EVENT_COLUMNS}
        cached = _EVENT_SQL[key] = (compiled.string, processors)
    return cached


def _bound(processors: dict[str, Any], name: str, value: Any) -> Any:
    """`value` as SQLAlchemy would send it for column `name`."""
    process = processors[name]
    return value if process is None else process(value)


async def record_reads(ctx: Context, patient_ids: Iterable[int], *, action: str, operation: str) -> None:
    """One event per patient read, written as multi-row inserts (one for a page)."""
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return
    shared = {
        "occurred_at": utcnow(),
        "actor_id": ctx.principal.user_id,
        "action": action,
        "operation": operation,
        "entity_type": "Patient",
        "request_id": ctx.request_id,
        "ip": ctx.ip,
        "outcome": "success",
    }
    # Each multi-row INSERT is atomic by itself: on the request's (autocommit) connection, committed (durable)
    # before the request goes on; through the driver itself where it allows (core/db.py
    # RequestConnection.driver_execute: MySQL drivers, whose writes take no turns). SQLite: one writer of this
    # process at a time, on the turns' own connections (core.db.WriteTurns).
    dialect = ctx.services.db.read_engine.dialect
    for start in range(0, len(ids), _EVENTS_PER_INSERT):
        chunk = ids[start : start + _EVENTS_PER_INSERT]
        sql, processors = _events_insert(dialect, len(chunk))
        common = {name: _bound(processors, name, value) for name, value in shared.items()}  # once, not per row
        params: list[Any] = []
        for pid in chunk:
            row = {
                **common,
                "entity_id": _bound(processors, "entity_id", str(pid)),
                "patient_id": _bound(processors, "patient_id", pid),
            }
            params.extend(row[name] for name in _EVENT_COLUMNS)
        if ctx.direct and await ctx.driver_execute(sql, tuple(params)) is not None:
            continue
        await ctx.services.db.write_turns.write(ctx.connection, partial(_execute, sql, tuple(params)))
