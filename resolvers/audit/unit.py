"""Every write goes through `write_unit`: its changes and its event commit together, all or nothing.

A refused or failed attempt is recorded in a transaction of its own, so the refusal is kept
while nothing of the attempted write is.

A unit that loses to a concurrent write (a Galera certification failure at COMMIT, a deadlock, a lock wait
timeout: `core.db.lost_race`) was rolled back whole and is reported as `LostRace` (CONFLICT). The root mutation
field runs again from its start, a bounded number of times, in one place: `retry_lost_races`, called by the
field extension every root mutation field has (schema/engine/oplog.py); never when a unit of the same call has
committed already (running it again would repeat that unit).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.db import driver_run, lost_race, unreachable, violates_unique
from core.direct import direct_for
from core.errors import AppError, ErrorCode, conflict, not_found
from core.speedups import SPEEDUPS
from core.timeutil import utcnow
from models.audit import Event
from models.integrity import AccessGrant, Amendment, GrantKind
from models.patient import Patient
from policies.enforce import check, mark
from policies.scope import cached_patient_scope
from resolvers.audit.chain import Sealer
from resolvers.audit.oplog import current_call, kept_variables

if TYPE_CHECKING:
    from resolvers.data.context import Context

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a mutation that lost to a concurrent write runs in all (the first run included), and the longest
# pause before the next run (a random part of it, times the run's number: racing writers spread out).
LOST_RACE_ATTEMPTS = 5
LOST_RACE_PAUSE_SECONDS = 0.02


class LostRace(AppError):
    """A write unit lost to a concurrent write and was rolled back whole: nothing of it was kept."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CONFLICT, "The write met a concurrent change and was not made: try again", reason="LOST_RACE"
        )


async def retry_lost_races(ctx: Any, run: Callable[[], Awaitable[T]]) -> T:
    """Run a root mutation field, again from its start while its write unit loses to concurrent writes (at most
    LOST_RACE_ATTEMPTS runs). Only while no unit of this run has committed: a committed unit is never repeated."""
    state = getattr(ctx, "state", None)
    attempt = 1
    while True:
        committed = getattr(state, "units_committed", 0)
        try:
            return await run()
        except LostRace:
            if attempt >= LOST_RACE_ATTEMPTS or getattr(state, "units_committed", 0) != committed:
                raise
        if state is not None:
            state.lost_races += 1
        await asyncio.sleep(random.uniform(0, LOST_RACE_PAUSE_SECONDS) * attempt)  # noqa: S311 - a pause
        attempt += 1


@dataclass
class WriteUnit:
    """One write: its transaction, the caller's context, and what its event will say.

    Domain code loads and changes rows through the unit's scoped methods (`get`, `select`, `update`); the
    session itself is the data layer's. The transaction is a Core connection; an ORM session joins it on first
    use of `session`, so a unit that reads and writes plain values (`row`, `change`) never sets one up."""

    connection: AsyncConnection
    entity_type: str
    ctx: Context | None = None
    entity_id: str = ""
    patient_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # run once the unit has committed (change notices to other instances): never for a refused write
    committed: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    accounts_changed: bool = False  # sessions, accounts or role assignments: cached principals are cleared
    # amendment rows (resolvers/audit/history.py), inserted when the unit ends, before its event
    amendments: list[dict[str, Any]] = field(default_factory=list)
    _session: AsyncSession | None = field(default=None, repr=False)

    @property
    def session(self) -> AsyncSession:
        """An ORM session in the unit's transaction, opened on first use. It never commits or closes the
        transaction itself (the unit does); a failed flush rolls it back, and the unit fails with it."""
        if self._session is None:
            self._session = AsyncSession(
                bind=self.connection, join_transaction_mode="rollback_only", expire_on_commit=False, autoflush=False
            )
        return self._session

    async def core(self) -> AsyncConnection:
        """The unit's transaction as a Core connection: statements that load or write plain values skip the
        session's ORM execution (the session, where one is open, runs on the same connection)."""
        return self.connection

    def on_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        if action not in self.committed:
            self.committed.append(action)

    def _data(self) -> Any:
        assert self.ctx is not None
        return self.ctx.data

    async def get(self, model: Any, row_id: int, *, what: str | None = None, purpose: str = "write") -> Any:
        """The row to change, within the caller's reach for writing; else NOT_FOUND."""
        statement = await self._data().select(model, purpose=purpose, then=lambda s: s.where(model.id == row_id))
        found = (await self.session.execute(_checked(statement))).scalar_one_or_none()
        if found is None:
            raise not_found(what or model.__name__)
        return found

    async def _direct(self, statement: Any, parameters: dict[str, Any]) -> tuple[Any, list[Any], int] | None:
        """A kept statement run through the driver itself on the unit's connection (core/direct.py):
        its description, rows and row count; None where it must run the usual way (not a MySQL driver, the
        statement not kept, the speed-up off)."""
        if not (self.ctx is not None and self.ctx.services.db.direct and SPEEDUPS.statement_reuse):
            return None
        form = direct_for(statement, self.connection.dialect)
        args = form.args(parameters) if form is not None else None
        if form is None or args is None:
            return None
        description, raw, count = await driver_run(self.connection, form.sql, args)
        return description, form.rows(self.connection.dialect, description, raw) if description else [], count

    async def row(self, model: Any, row_id: int, *, what: str | None = None, purpose: str = "write") -> Any:
        """The row to change as plain values (every column, read like the model: no ORM object, identity map or
        change tracking), within the caller's reach for writing; else NOT_FOUND. Change it with `change`."""
        statement = _checked(await self._data().row_statement(model, purpose=purpose))
        ran = await self._direct(statement, {"row_id": row_id})
        if ran is not None:
            found = ran[1][0] if ran[1] else None
        else:
            found = (await self.connection.execute(statement, {"row_id": row_id})).first()
        if found is None:
            raise not_found(what or model.__name__)
        return self._data().rows_as(model, None, [found])[0]

    async def change(
        self, model: Any, row: Any, values: dict[str, Any], *, purpose: str = "write", conflict_message: str
    ) -> Any:
        """Write `values` to a row read by `row` in one UPDATE, only while the row is still within the caller's
        reach and at the version read (else CONFLICT with `conflict_message`: another write came between), its
        version one up. Two writes racing on one row cannot both pass their checks. The row as written."""
        columns = tuple(values)
        statement = _checked(await self._data().guarded_update(model, columns, purpose=purpose))
        params = {f"new_{name}": value for name, value in values.items()}
        params.update(row_id=row.id, row_version=row.version)
        ran = await self._direct(statement, params)
        if ran is not None:
            changed = ran[2]
        else:
            result: Any = await self.connection.execute(statement, params)
            changed = int(result.rowcount or 0)
        if changed != 1:
            raise conflict(conflict_message)
        written = dict(zip((column.name for column in model.__table__.columns), row, strict=True))  # as `row` read it
        written.update(values, version=row.version + 1)
        return self._data().rows_as(model, None, [tuple(written.values())])[0]

    async def find(self, model: Any, row_id: int | None, *, purpose: str = "read") -> Any:
        """The row within the caller's reach for `purpose`, or None (a reference to check, not to change)."""
        if row_id is None:
            return None
        statement = await self._data().select(model, purpose=purpose, then=lambda s: s.where(model.id == row_id))
        return (await self.session.execute(_checked(statement))).scalar_one_or_none()

    async def reaching_grant(self, patient_id: int) -> int | None:
        """The caller's emergency grant through which alone they reach this patient, or None when their own
        reach holds it. A write made under a grant records it, so the write never widens their reach later."""
        assert self.ctx is not None
        access = await self.ctx.access()
        if access.reaches_all or access.user_id is None:
            return None
        own = cached_patient_scope(access.user_id, access.scope, access.departments, False)
        system = mark(select(Patient.id).where(Patient.id == patient_id, own), "unscoped")
        if (await self.session.execute(system)).first() is not None:
            return None
        grant = mark(
            select(AccessGrant.id)
            .where(
                AccessGrant.patient_id == patient_id,
                AccessGrant.user_id == access.user_id,
                AccessGrant.kind == GrantKind.EMERGENCY.value,
                AccessGrant.expires_at > utcnow(),
            )
            .order_by(AccessGrant.id.desc())
            .limit(1),
            "unscoped",
        )
        found = (await self.session.execute(grant)).scalar()
        return int(found) if found is not None else None

    def detach(self, row: Any) -> None:
        """Stop tracking a loaded row: it is written by an explicit UPDATE (an optimistic lock), not by a flush."""
        self.session.expunge(row)

    async def objects(self, statement: Any) -> list[Any]:
        return list((await self.session.execute(_checked(statement))).scalars().all())

    async def first(self, statement: Any) -> Any:
        found = await self.objects(statement.limit(1))
        return found[0] if found else None

    async def rows(self, statement: Any) -> list[Any]:
        return list((await self.session.execute(_checked(statement))).all())

    async def scalars(self, statement: Any) -> list[Any]:
        return list((await self.session.execute(_checked(statement))).scalars().all())

    async def execute(self, statement: Any) -> int:
        """Run a scoped UPDATE (from `ctx.data.update`); how many rows it changed."""
        result: Any = await self.session.execute(_checked(statement))
        changed = int(result.rowcount or 0)
        table = getattr(getattr(statement, "table", None), "name", None)
        if changed and table in ACCOUNT_TABLES:
            self.accounts_changed = True
        return changed

    def add(self, row: Any) -> None:
        self.session.add(row)

    async def delete(self, row: Any) -> None:
        """Remove a row loaded through `get` (so within the caller's write reach). Only for lists that are
        configuration, not records (a moderation keyword): records are voided, never deleted."""
        await self.session.delete(row)

    def add_all(self, rows: Any) -> None:
        self.session.add_all(rows)

    async def insert_many(self, model: Any, rows: list[dict[str, Any]]) -> int:
        """New rows of `model` (every column given, defaults included) in one executemany: for bulk imports, where
        building and flushing thousands of ORM objects costs most of the time. No ids come back."""
        if rows:
            await self.session.execute(mark(insert(model), "insert"), rows)
        return len(rows)

    async def flush(self, *, unique: tuple[str, str] | None = None, refusal: AppError | None = None) -> None:
        """Write the pending rows now. With `unique` (a unique key's constraint name and its column) and
        `refusal`: a row that breaks that key (another writer committed the same value since the domain's own
        check) is refused with `refusal`, the same answer the check gives, not the generic duplicate conflict."""
        try:
            await self.session.flush()
        except IntegrityError as error:
            if unique is not None and refusal is not None and violates_unique(error, *unique):
                raise refusal from None
            raise


_checked = check


def _runs_direct(connection: AsyncConnection) -> bool:
    """The amendment and event INSERTs, already the driver's SQL, go to the driver itself on a MySQL driver."""
    return connection.dialect.name == "mysql" and SPEEDUPS.statement_reuse


# A write unit changed sessions, accounts, roles or role assignments: every instance clears the principals it
# trusts without the database (resolvers/data/sessioncache.py).
PRINCIPALS_CHANNEL = "principals"
ACCOUNT_TABLES = frozenset({"auth_session", "app_user", "user_role", "role"})


def _changes_accounts(session: AsyncSession) -> bool:
    """Rows of sessions, accounts, roles or role assignments changed or removed in this unit (a new session
    changes nothing a cached principal says)."""
    for row in (*session.dirty, *session.deleted, *session.new):
        table = getattr(row, "__tablename__", None)
        if table in ACCOUNT_TABLES and not (table == "auth_session" and row in session.new):
            return True
    return False


def _principals_changed(ctx: Context) -> Callable[[], Awaitable[None]]:
    async def notice() -> None:
        await ctx.services.notifier.publish(PRINCIPALS_CHANNEL)

    return notice


def event_values(
    ctx: Context,
    *,
    action: str,
    operation: str,
    entity_type: str = "",
    entity_id: str = "",
    patient_id: int | None = None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event's columns (all but its id)."""
    # The mutation the event belongs to, for the operation log (its variables as the allow-list keeps them).
    call = current_call(ctx, operation)
    # Cut to the columns' lengths: recording must never fail on the size of what it records.
    return {
        "occurred_at": utcnow(),
        "is_mutation": call is not None,
        "user_agent": ctx.user_agent[:255],
        "duration_ms": call.elapsed_ms() if call is not None else None,
        "variables": kept_variables(call) if call is not None else None,
        "actor_id": ctx.principal.user_id,
        "action": action[:32],
        "operation": operation[:64],
        "entity_type": entity_type[:48],
        "entity_id": entity_id[:64],
        "patient_id": patient_id,
        "request_id": ctx.request_id[:64],
        "ip": ctx.ip[:64],
        "outcome": outcome[:32],
        "detail": detail or None,
    }


def make_event(ctx: Context, **kwargs: Any) -> Event:
    """The event as an ORM object (to add to a session); `event_values` says what it holds."""
    return Event(**event_values(ctx, **kwargs))


class _Insert:
    """INSERTs of rows of one table (every column named but the id) for a write unit's amendments and event:
    compiled once per dialect and number of rows, sent as the driver's own SQL with each value processed as
    SQLAlchemy would process it for its column (no ORM object or flush, no compiled-cache look-up or parameter
    set-up per statement). Several rows go in one INSERT with a VALUES list each (consecutive ids, never a
    driver's bulk protocol: the audit chain watches gaps in event ids)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.names = tuple(column.name for column in table.columns if column.name != "id")
        self._compiled: dict[tuple[str, str, int], tuple[str, list[Any]]] = {}

    def _sql(self, dialect: Any, rows: int) -> tuple[str, list[Any]]:
        key = (dialect.name, dialect.paramstyle, rows)
        found = self._compiled.get(key)
        if found is None:
            columns = self.table.c
            values = [
                {name: bindparam(f"{name}_{i}", type_=columns[name].type) for name in self.names} for i in range(rows)
            ]
            compiled = self.table.insert().values(values).compile(dialect=dialect)
            # positional, row by row, in `names` order: what `run` sends
            assert list(compiled.positiontup or ()) == [f"{name}_{i}" for i in range(rows) for name in self.names]
            processors = [columns[name].type._cached_bind_processor(dialect) for name in self.names]
            found = self._compiled[key] = (compiled.string, processors)
        return found

    async def run(self, connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), _ROWS_PER_INSERT):  # so at most that many compiled forms per dialect
            chunk = rows[start : start + _ROWS_PER_INSERT]
            sql, processors = self._sql(connection.dialect, len(chunk))
            params: list[Any] = []
            for row in chunk:
                for name, process in zip(self.names, processors, strict=True):
                    value = row.get(name)
                    skip = process is None or (value is None and name not in _JSON)
                    params.append(value if skip else process(value))
            if _runs_direct(connection):
                await driver_run(connection, sql, tuple(params))
            else:
                await connection.exec_driver_sql(sql, tuple(params))


_ROWS_PER_INSERT = 50
_INSERT_EVENT = _Insert(Event.__table__)  # type: ignore[attr-defined]
_INSERT_AMENDMENT = _Insert(Amendment.__table__)  # type: ignore[attr-defined]
# JSON columns: None is processed too, stored as JSON null, as SQLAlchemy stores it for them
_JSON = frozenset({"detail", "variables", "changes"})


async def record_refusal(ctx: Context, *, operation: str, action: str, entity_type: str, code: str) -> None:
    try:
        async with ctx.db.transaction() as session:
            session.add(
                make_event(ctx, action=action, operation=operation, entity_type=entity_type, outcome=code.lower())
            )
    except Exception:
        log.exception("could not record a refused %s", operation)


@asynccontextmanager
async def write_unit(
    ctx: Context, *, operation: str, action: str, entity_type: str, conflict_message: str = "Already exists"
) -> AsyncIterator[WriteUnit]:
    """A transaction that ends with the operation's event; duplicate keys become CONFLICT."""
    committing = False
    try:
        async with ctx.db.core_transaction() as connection:
            unit = WriteUnit(connection=connection, entity_type=entity_type, ctx=ctx)
            try:
                yield unit
                session = unit._session
                if unit.accounts_changed or (session is not None and _changes_accounts(session)):
                    unit.on_commit(_principals_changed(ctx))
                if session is not None:
                    await session.flush()
            finally:
                if unit._session is not None:
                    await unit._session.close()  # its objects stay loaded (detached); the transaction goes on
            await _INSERT_AMENDMENT.run(connection, unit.amendments)
            values = event_values(
                ctx,
                action=action,
                operation=operation,
                entity_type=unit.entity_type,
                entity_id=unit.entity_id,
                patient_id=unit.patient_id,
                detail=unit.detail,
            )
            await _INSERT_EVENT.run(connection, [values])
            committing = True  # what fails from here on fails in the flush or the COMMIT itself
    except AppError as error:
        await record_refusal(ctx, operation=operation, action=action, entity_type=entity_type, code=error.code)
        error.recorded = True  # type: ignore[attr-defined]
        raise
    except IntegrityError as error:
        # The driver's message can hold the offending values: never pass it on.
        await record_refusal(ctx, operation=operation, action=action, entity_type=entity_type, code="CONFLICT")
        refusal = AppError(ErrorCode.CONFLICT, conflict_message)
        refusal.recorded = True  # type: ignore[attr-defined]
        raise refusal from error
    except DataError as error:
        # A value the column cannot hold (too long, out of range) that validation let through: the safety net
        # under every module's own limits, without the driver's message.
        log.warning("a %s write met a database data error (%s): a validation limit is missing", operation, type(error))
        await record_refusal(ctx, operation=operation, action=action, entity_type=entity_type, code="BAD_USER_INPUT")
        refusal = AppError(ErrorCode.BAD_USER_INPUT, "A value is too long or out of range for its field")
        refusal.recorded = True  # type: ignore[attr-defined]
        raise refusal from error
    except DBAPIError as error:
        if committing and unreachable(error):
            # The connection broke during COMMIT: the server may have committed before it went (a Galera node
            # killed after its write set was replicated): the client must look before it writes again.
            raise AppError(
                ErrorCode.UNAVAILABLE,
                "The database connection broke while the write was committing: it may have been kept; reload first",
                inDoubt=True,
                retryAfter=1,
            ) from error
        if not lost_race(error):
            raise
        # Galera certification (or a deadlock): rolled back whole; the mutation's field runs again from its start
        await record_refusal(ctx, operation=operation, action=action, entity_type=entity_type, code="CONFLICT")
        lost = LostRace()
        lost.recorded = True  # type: ignore[attr-defined]
        raise lost from error
    ctx.state.units_committed += 1
    for after in unit.committed:
        try:
            await after()
        except Exception:  # the write stands; a notice lost costs the periodic re-check's delay
            log.exception("an after-commit action of %s failed", operation)
    # committed: link the new events into the audit chain (in the background, or inline without a sealer task)
    sealer: Sealer | None = ctx.services.sealer
    await (sealer or Sealer(ctx.db, interval=0)).after_write()
