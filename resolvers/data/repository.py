"""The scoped repository: the only way domain code reads or writes the database.

`ctx.data` starts every statement from a table and the caller's reach for it (policies/tables.py), runs it on
the request's connection, and hands writes a unit whose loads are scoped the same way. A statement that did
not start here is refused when run (`Unscoped`), and domain modules cannot build one anyway: tests/test_layers.py
bans `select`, `update`, `delete`, `insert` and the engine outside resolvers/data/ and resolvers/audit/.

The speed-ups live here too, out of domain code: reach clauses made once per distinct reach, statements that
callers mark reusable kept by key (resolvers/data/statements.py), column projection (resolvers/data/projection.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Delete, Select, Update, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from core.direct import direct_for
from core.errors import not_found
from core.lru import LRU
from policies.access import Access
from policies.enforce import check, mark
from policies.tables import reach_clause
from resolvers.audit.unit import write_unit
from resolvers.data.events import record_reads
from resolvers.data.pagination import Page, paginate
from resolvers.data.projection import Columns, as_rows, select_columns
from resolvers.data.statements import reused

if TYPE_CHECKING:
    from resolvers.data.context import Context

_CLAUSES: LRU[tuple[Any, ...], ColumnElement[bool]] = LRU(4096)
_check = check


def clause_for(model: Any, access: Access, purpose: str = "read") -> ColumnElement[bool]:
    """The reach condition, made once per distinct (table, purpose, reach) and shared by its requests: the
    same object each time, so statements built on it can be kept and reused."""
    key = (model, purpose, access.user_id, access.scope, access.departments, access.capabilities)
    found = _CLAUSES.get(key)
    if found is None:
        found = reach_clause(model, access, purpose)
        _CLAUSES.put(key, found)
    return found


class Data:
    """One request's view of the database, limited to the caller's reach."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def access(self) -> Access:
        return await self._ctx.access()

    async def clause(self, model: Any, purpose: str = "read") -> ColumnElement[bool]:
        return clause_for(model, await self._ctx.access(), purpose)

    # ---- statements ----------------------------------------------------------------------------

    async def select(
        self,
        model: Any,
        *entities: Any,
        columns: Columns | bool = False,
        purpose: str = "read",
        key: tuple[Any, ...] | None = None,
        then: Callable[[Select[Any]], Select[Any]] | None = None,
    ) -> Select[Any]:
        """SELECT from `model` within the caller's reach: the model's objects, the given `entities` (columns or
        expressions), or, with `columns`, those columns by name (None: all) read back by `rows_as`.

        `then` refines the base statement; with a `key` the result is built once and reused for that key (the
        reach clause is part of the key), so `then` must not capture per-request values."""
        clause = await self.clause(model, purpose)

        def build() -> Select[Any]:
            if columns is not False:
                base = select_columns(model, columns if columns is not True else None)  # type: ignore[arg-type]
            else:
                base = select(*entities) if entities else select(model)
            base = base.where(clause)
            return mark(then(base) if then is not None else base, purpose)

        if key is None:
            return build()
        return reused(("data", model, purpose, columns, *entities, *key), build, keep=(clause,))  # type: ignore[no-any-return]

    async def update(self, model: Any, *, purpose: str = "write") -> Update:
        """UPDATE of `model`'s rows within the caller's reach (run it in a write unit)."""
        return mark(update(model).where(await self.clause(model, purpose)), purpose)  # type: ignore[no-any-return]

    async def row_statement(self, model: Any, *, purpose: str = "write") -> Select[Any]:
        """SELECT every column of the row whose id is the bind parameter `row_id`, within the caller's reach for
        `purpose`: built once per reach and kept (a write unit's `row`)."""
        return await self.select(
            model,
            columns=True,
            purpose=purpose,
            key=("row",),
            then=lambda s: s.where(model.__table__.c.id == bindparam("row_id")),
        )

    async def guarded_update(self, model: Any, columns: tuple[str, ...], *, purpose: str = "write") -> Update:
        """UPDATE of the row whose id is `row_id`, within the caller's reach for `purpose` and only while its
        version is still `row_version` (the optimistic guard): sets `columns` (bind parameters `new_<column>`)
        and the version one up. Built once per reach and set of columns and kept (a write unit's `change`)."""
        clause = await self.clause(model, purpose)
        table = model.__table__

        def build() -> Update:
            statement = (
                update(table)
                .where(clause, table.c.id == bindparam("row_id"), table.c.version == bindparam("row_version"))
                .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns})
                .values(version=table.c.version + 1)
            )
            return mark(statement, purpose)  # type: ignore[no-any-return]

        return reused(("guarded", model, purpose, columns), build, keep=(clause,))  # type: ignore[no-any-return]

    def unscoped(self, why: str) -> Unscoped_:
        """For the platform's own work with no caller's reach to apply (logging in, looking up a session,
        scheduled jobs): statements from here reach every row. Allowed only in the modules tests/test_layers.py
        lists."""
        return Unscoped_(why)

    # ---- running them --------------------------------------------------------------------------

    async def rows(self, statement: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        """Result rows (Core, on the request's connection); a kept statement's through the driver itself
        (core/direct.py) where the request's connection allows it."""
        checked = _check(statement)
        if self._ctx.direct:
            form = direct_for(checked, self._ctx.services.db.read_engine.dialect)
            args = form.args(parameters or {}) if form is not None else None
            if args is not None:
                assert form is not None
                ran = await self._ctx.driver_execute(form.sql, args)
                if ran is not None:
                    return form.rows(self._ctx.services.db.read_engine.dialect, *ran)
        async with self._ctx.connection() as connection:
            return list((await connection.execute(_check(statement), parameters or {})).all())

    async def scalars(self, statement: Any) -> list[Any]:
        async with self._ctx.connection() as connection:
            return list((await connection.execute(_check(statement))).scalars().all())

    async def scalar(self, statement: Any) -> Any:
        async with self._ctx.connection() as connection:
            return (await connection.execute(_check(statement))).scalar()

    async def objects(self, statement: Any) -> list[Any]:
        """ORM objects (a session on the request's connection), to show, not to change."""
        async with self._ctx.reads() as session:
            return list((await session.execute(_check(statement))).scalars().all())

    async def first(self, statement: Any) -> Any:
        found = await self.objects(statement.limit(1))
        return found[0] if found else None

    async def get(self, model: Any, row_id: int, *, what: str | None = None, purpose: str = "read") -> Any:
        """One object by id within reach, else NOT_FOUND (out of reach and missing look the same)."""
        found = await self.first(await self.select(model, purpose=purpose, then=lambda s: s.where(model.id == row_id)))
        if found is None:
            raise not_found(what or model.__name__)
        return found

    async def reach_or_not_found(
        self, model: Any, row_id: int | None, *, purpose: str = "read", what: str | None = None
    ) -> None:
        """An id a client sent to filter by: NOT_FOUND unless it names a row within reach for `purpose`."""
        if row_id is None:
            return
        statement = await self.select(model, model.id, purpose=purpose, then=lambda s: s.where(model.id == row_id))
        if not await self.scalars(statement):
            raise not_found(what or model.__name__)

    async def page(
        self,
        statement: Any,
        *,
        keys: Sequence[InstrumentedAttribute[Any]] | Sequence[Any],
        key_of: Callable[[Any], Sequence[Any]] = lambda row: [row.id],
        first: int | None,
        after: str | None,
        descending: bool = False,
        rows: bool = False,
        reuse: bool = False,
    ) -> Page[Any]:
        """One keyset page (resolvers/data/pagination.py): ORM objects, or with `rows` result rows."""
        factory = self._ctx.connection if rows else self._ctx.reads
        return await paginate(
            factory,
            _check(statement),
            keys=keys,
            key_of=key_of,
            first=first,
            after=after,
            descending=descending,
            rows=rows,
            reuse=reuse,
        )

    @staticmethod
    def rows_as(model: Any, columns: Columns, rows: Iterable[Any]) -> list[Any]:
        """Rows of `select(model, columns=...)` read like the model."""
        return as_rows(model, columns, rows)

    # ---- writes and read events ------------------------------------------------------------------

    @asynccontextmanager
    async def write(
        self, *, operation: str, action: str, entity_type: str, conflict_message: str = "Already exists"
    ) -> AsyncIterator[Any]:
        """A write unit: one transaction ending with its audit event (resolvers/audit/unit.py)."""
        async with write_unit(
            self._ctx,
            operation=operation,
            action=action,
            entity_type=entity_type,
            conflict_message=conflict_message,
        ) as unit:
            yield unit

    async def increment(self, model: Any, row_id: int, column: str, *, purpose: str = "read") -> int:
        """Add one to a counter column of a row within reach, as one statement on the request's connection and
        without an event: only for counters nobody answers for (an article's views), never for data. How many
        rows changed (0: none in reach)."""
        counter = getattr(model, column)
        statement = mark(
            update(model).where(model.id == row_id, await self.clause(model, purpose)).values({column: counter + 1}),
            purpose,
        )

        async def run(connection: AsyncConnection) -> Any:
            return await connection.execute(statement)

        result = await self._ctx.services.db.write_turns.write(self._ctx.connection, run)
        return int(result.rowcount or 0)

    async def record_reads(self, patient_ids: Iterable[int], *, action: str, operation: str) -> None:
        await record_reads(self._ctx, patient_ids, action=action, operation=operation)


class Unscoped_:
    """Statements for system work, marked as such (see `Data.unscoped`)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def select(self, *entities: Any) -> Select[Any]:
        return mark(select(*entities), "unscoped")  # type: ignore[no-any-return]

    def update(self, model: Any) -> Update:
        return mark(update(model), "unscoped")  # type: ignore[no-any-return]

    def delete(self, model: Any) -> Delete:
        return mark(delete(model), "unscoped")  # type: ignore[no-any-return]
