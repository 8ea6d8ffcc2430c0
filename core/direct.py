"""Reused statements run through the driver itself: compiled once to the driver's SQL, rows processed as
SQLAlchemy would process them.

A request's one-row read through SQLAlchemy's execution path (a greenlet, an execution context, a cursor
adapter and a result object per statement) cost three to four times the driver's own CPU. A statement kept
by `reused` (resolvers/data/statements.py) is the same object on every request, so its SQL, the order of its
parameters, its fixed values (the caller's reach) and its columns' processors can be worked out once per
dialect; each execution then binds the request's values and runs the SQL on the request's connection through
`RequestConnection.driver_execute` (core/db.py: the same locks, cursor events and error handling).

A write unit's kept statements (the row it reads, its guarded UPDATE) run the same way on its transaction's
connection (resolvers/audit/unit.py, `core.db.driver_run`).

Only what can be worked out once qualifies: a SELECT (or UPDATE) whose expanding parameters (IN lists) are fixed in the
statement and whose bound values are plain (no callables). Anything else, and every statement outside an HTTP
request or on SQLite, runs the usual way. `STATEMENT_REUSE=false` switches this off with the reuse itself.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import Select, Update

from core.lru import LRU

_ENTRIES: LRU[int, list[Any]] = LRU(1024)  # id(statement) -> [statement, {dialect name: Direct | False}]


class Direct:
    """One statement's driver SQL and what binding and reading it takes."""

    __slots__ = ("fixed", "keys", "readers", "result", "row_type", "runtime", "slots", "sql", "varying")

    def __init__(self, statement: Select[Any] | Update, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        runtime = {name for name, bind in compiled.binds.items() if bind.required and bind.key == name}
        # values computed when the statement runs (`bindparam(callable_=...)`: the reach's "now")
        computed = {name: bind.callable for name, bind in compiled.binds.items() if bind.callable is not None}
        if not compiled.positional:
            raise _NotDirect
        values = compiled.construct_params(dict.fromkeys(runtime), _check=False)
        if compiled.post_compile_params or compiled.literal_execute_params:
            if any(values.get(compiled.bind_names[bind]) is None for bind in compiled.post_compile_params):
                raise _NotDirect
            expanded = compiled._process_parameters_for_postcompile(values)
            sql, order, values = expanded.statement, list(expanded.positiontup or ()), dict(expanded.parameters)
            processors: dict[str, Any] = {**compiled._bind_processors, **expanded.processors}
        else:
            sql, order = compiled.string, list(compiled.positiontup or ())
            processors = dict(compiled._bind_processors)
        self.sql = sql
        self.runtime = frozenset(runtime)
        # per position: (name, its processor or None, the caller's value, else a function giving it, else fixed)
        self.slots: tuple[tuple[str, Any, bool, Any], ...] = tuple(
            (name, processors.get(name), name in runtime, computed.get(name)) for name in order
        )
        self.varying = tuple(
            (position, name, process, given, compute)
            for position, (name, process, given, compute) in enumerate(self.slots)
            if given or compute is not None
        )
        fixed = []
        for name, process, given, compute in self.slots:
            value = values.get(name)
            fixed.append(None if given or compute is not None else (value if process is None else process(value)))
        self.fixed = fixed
        self.result = [(column.keyname, column.type) for column in compiled._result_columns]
        self.keys = tuple(key for key, _type in self.result)
        self.row_type: type[DirectRow] = DirectRow
        self.readers: Any = None  # result processors, known from the first cursor description

    def args(self, parameters: dict[str, Any]) -> tuple[Any, ...] | None:
        """The driver's arguments, or None when `parameters` are not exactly the statement's own."""
        if len(parameters) != len(self.runtime) or not self.runtime.issuperset(parameters):
            return None
        args = list(self.fixed)
        for position, name, process, given, compute in self.varying:
            value = parameters[name] if given else compute()
            args[position] = value if process is None else process(value)
        return tuple(args)

    def rows(self, dialect: Any, description: Any, raw: list[Any]) -> list[Any]:
        processors = self.readers
        if processors is None:
            processors = self.readers = [
                type_._cached_result_processor(dialect, column[1])
                for (_key, type_), column in zip(self.result, description, strict=True)
            ]
            self.row_type = _row_type(self.keys)
        row_type = self.row_type
        if not any(processors):
            return [row_type(row) for row in raw]
        pairs = list(enumerate(processors))
        out = []
        for row in raw:
            values = list(row)
            for index, process in pairs:
                if process is not None:
                    values[index] = process(values[index])
            out.append(row_type(values))
        return out


class _NotDirect(Exception):
    pass


class DirectRow(tuple):  # type: ignore[type-arg]
    """A result row read by position or by column name, as SQLAlchemy's Row is on the read paths."""

    __slots__ = ()


_ROW_TYPES: dict[tuple[str, ...], type[DirectRow]] = {}


def _row_type(keys: tuple[str, ...]) -> type[DirectRow]:
    found = _ROW_TYPES.get(keys)
    if found is None:
        attributes: dict[str, Any] = {"__slots__": ()}
        attributes.update({key: property(itemgetter(index)) for index, key in enumerate(keys) if key.isidentifier()})
        found = _ROW_TYPES[keys] = type("DirectRow", (DirectRow,), attributes)
    return found


def register(statement: Any) -> None:
    """A statement kept for reuse: it may run directly (a SELECT, or a write unit's guarded UPDATE)."""
    if isinstance(statement, (Select, Update)):
        _ENTRIES.put(id(statement), [statement, {}])


def direct_for(statement: Any, dialect: Any) -> Direct | None:
    """The statement's direct form for `dialect`, or None (not a kept statement, or not one that qualifies)."""
    entry = _ENTRIES.get(id(statement))
    if entry is None or entry[0] is not statement:
        return None
    forms = entry[1]
    form = forms.get(dialect.name)
    if form is None:
        try:
            form = Direct(statement, dialect)
        except _NotDirect:
            form = False
        forms[dialect.name] = form
    return form or None
