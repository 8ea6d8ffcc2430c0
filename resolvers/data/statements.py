"""Statements built once and reused: SQLAlchemy derives a statement's cache key from its whole tree on
every execution of a new statement object (scope subqueries included), but only once for an object it has
seen. Hot read paths therefore keep their statements here, keyed by what shapes them, with the values that
change per request (ids, page size, cursor) as bind parameters.

Keys may hold objects identified by `id()` (a principal's cached scope clause): pass them as `keep`, so they
stay alive, and their ids unique, while the entry is cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.direct import register
from core.lru import LRU
from core.speedups import SPEEDUPS

_STATEMENTS: LRU[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = LRU(1024)


def reused(key: tuple[Any, ...], build: Callable[[], Any], *, keep: tuple[Any, ...] = ()) -> Any:
    """The statement cached under `key` (plus the ids of `keep`), built by `build` the first time."""
    if not SPEEDUPS.statement_reuse:
        return build()
    full_key = (*key, *(id(obj) for obj in keep))
    entry = _STATEMENTS.get(full_key)
    if entry is not None and all(a is b for a, b in zip(entry[0], keep, strict=True)):
        return entry[1]
    statement = build()
    _STATEMENTS.put(full_key, (keep, statement))
    register(statement)
    return statement
