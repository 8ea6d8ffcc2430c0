"""Keyset pagination behind every Relay-style connection: opaque cursors that encode the sort key."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import BigInteger, Integer, Select, String, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.errors import bad_input
from resolvers.data.statements import reused

T = TypeVar("T")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as error:
        raise bad_input("Invalid cursor", "after") from error
    if not isinstance(values, list) or len(values) != width:
        raise bad_input("Invalid cursor", "after")
    if not all(isinstance(v, int | str) and not isinstance(v, bool) for v in values):
        raise bad_input("Invalid cursor", "after")
    return values


_INT64 = range(-(2**63), 2**63)


def _check_key_types(values: list[Any], keys: Sequence[Any]) -> None:
    """A cursor's values must fit their key columns: a string or a huge number for an integer key is bad input."""
    for value, key in zip(values, keys, strict=True):
        try:
            python_type = key.type.python_type
        except (AttributeError, NotImplementedError):
            continue
        if python_type is int and (not isinstance(value, int) or value not in _INT64):
            raise bad_input("Invalid cursor", "after")


def check_page_size(first: int | None) -> int:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0 or size > MAX_PAGE_SIZE:
        raise bad_input(f"first must be between 0 and {MAX_PAGE_SIZE}", "first")
    return size


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]


async def paginate(
    session_factory: Callable[[], Any],
    statement: Select[Any],
    *,
    keys: Sequence[Any],
    key_of: Callable[[Any], Sequence[Any]],
    first: int | None,
    after: str | None,
    descending: bool = False,
    rows: bool = False,
    reuse: bool = False,
) -> Page[Any]:
    """One page of `statement` ordered by `keys` (unique together); the total is counted on demand.

    `rows`: the statement selects columns, and the page holds its Rows (else the first column's scalars).
    `session_factory` gives ORM sessions, or, for a statement of columns, Core connections (ctx.connection).
    `reuse`: `statement` is a kept object (resolvers/data/statements.py): the page statements built from it are kept
    too, by its identity, with the page size and the cursor as bind parameters."""
    size = check_page_size(first)
    values = None
    if after:
        values = decode_cursor(after, len(keys))
        _check_key_types(values, keys)

    def build() -> Any:
        filtered = statement
        if values is not None:
            # typed by the cursor's JSON values (a date key travels as its ISO text), as the literals were
            bounds = [
                bindparam(f"after_{i}", type_=String() if isinstance(value, str) else BigInteger())
                for i, value in enumerate(values)
            ]
            left = tuple_(*keys) if len(keys) > 1 else keys[0]
            right = tuple_(*bounds) if len(keys) > 1 else bounds[0]
            filtered = filtered.where(left < right if descending else left > right)
        order = [key.desc() for key in keys] if descending else list(keys)
        return filtered.order_by(*order).limit(bindparam("page_limit", type_=Integer))

    if reuse:
        shape = None if values is None else tuple(isinstance(value, str) for value in values)
        page_statement = reused(("page", shape, descending), build, keep=(statement, *keys))
    else:
        page_statement = build()
    parameters: dict[str, Any] = {"page_limit": size + 1}
    for i, value in enumerate(values or ()):
        parameters[f"after_{i}"] = value
    async with session_factory() as session:
        # One row past the page tells whether there is a next page (for `first: 0` too).
        result = await session.execute(page_statement, parameters)
        found = list(result.all() if rows else result.scalars().all())
    items = found[:size]

    async def count() -> int:
        async with session_factory() as counting:
            return await _count(counting, statement)

    return Page(
        items=items,
        cursors=[encode_cursor(key_of(item)) for item in items],
        has_next_page=len(found) > size,
        has_previous_page=bool(after),
        count=count,
    )


async def _count(session: AsyncSession | AsyncConnection, statement: Select[Any]) -> int:
    total = await session.execute(select(func.count()).select_from(statement.order_by(None).subquery()))
    return int(total.scalar_one())
