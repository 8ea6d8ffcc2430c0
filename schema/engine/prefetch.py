"""Records shown under an object (a patient's visits, a visit's diagnoses): through the loaders, or looked ahead
for a whole page.

Without look-ahead, each patient's `visits` (and each visit's `diagnoses`) is its own async resolver: a
DataLoader future, a task and an awaited completion per object, batched into one query per kind in the
end anyway. The list resolver knows the selection, so `prefetch_history` loads the same batches up front
(through the same scoped, projected loaders) and hands every object its records, and theirs in turn; those
fields then resolve as plain lists. Objects reached any other way load through `history_of`.

This module is machinery: the domain types it fills are handed to it (`register`) by the domain modules
that define them, it imports none of them. An owner object carries `_pk` (its id, the loaders' key) and a
`_prefetched` dict (attribute name -> shown records).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from strawberry.dataloader import DataLoader

from core.speedups import SPEEDUPS
from resolvers.data.context import Info
from resolvers.data.loaders import Loaders
from resolvers.data.projection import Columns
from schema.engine.projection import Projection, columns_for, names_at_cached


@dataclass(frozen=True)
class Records:
    """Records of one kind under an owner type: how to load them and the type that shows them."""

    attribute: str  # the owner's Python field name, the key in its `_prefetched`
    field: str  # the GraphQL field name on the owner
    type: Any  # the strawberry type, with from_row
    loader: Callable[[Loaders, Columns], DataLoader[int, list[Any]]]  # the rows by owner id, with those columns
    projection: Projection | None = None  # which columns a selection reads (None: every column)

    def shown(self, rows: Sequence[Any]) -> list[Any]:
        return [self.type.from_row(row) for row in rows]


# owner GraphQL type name -> attribute -> records
_REGISTRY: dict[str, dict[str, Records]] = {}
_OWNER_NAMES: dict[type, str] = {}


def register(owner: str, records: Records) -> None:
    """Records of `owner` (a GraphQL type name) that lists look ahead for and `history_of` loads."""
    _REGISTRY.setdefault(owner, {})[records.attribute] = records


def _owner_name(owner: Any) -> str:
    kind = type(owner)
    name = _OWNER_NAMES.get(kind)
    if name is None:
        name = _OWNER_NAMES[kind] = kind.__strawberry_definition__.name
    return name


def _records(owner: Any, attribute: str) -> Records:
    found = _REGISTRY.get(_owner_name(owner), {}).get(attribute)
    if found is None:
        raise LookupError(f"no records {attribute!r} registered for {_owner_name(owner)} (schema/engine/prefetch.py)")
    return found


def history_of(info: Info, owner: Any, attribute: str) -> list[Any]:
    """An owner's records of one kind: the prefetched list, or an awaitable (GraphQL execution awaits it)."""
    if attribute in owner._prefetched:
        return cast(list[Any], owner._prefetched[attribute])
    return cast(list[Any], _load(info, _records(owner, attribute), owner._pk))


async def _load(info: Info, records: Records, owner_id: int) -> list[Any]:
    columns = None if records.projection is None else columns_for(info, records.projection)
    return records.shown(await records.loader(info.context.loaders, columns).load(owner_id))


async def prefetch_history(info: Info, owners: Sequence[Any], path: tuple[str, ...]) -> None:
    """Fill `_prefetched` of these owner objects (found at `path` below the current field), and of the
    records found in turn, as far as the selection and the registered records go."""
    if not owners or not SPEEDUPS.prefetch:
        return
    registered = _REGISTRY.get(_owner_name(owners[0]))
    if not registered:
        return
    names = names_at_cached(info, path)
    loaders = info.context.loaders
    ids = [owner._pk for owner in owners]
    for attribute, records in registered.items():
        if records.field not in names:
            continue
        records_path = (*path, records.field)
        columns = None if records.projection is None else columns_for(info, records.projection, records_path)
        # the loader's batch function itself: one query, without a future per key
        groups = await records.loader(loaders, columns).load_fn(ids)
        found: list[Any] = []
        for owner, rows in zip(owners, groups, strict=True):
            owner._prefetched[attribute] = shown = records.shown(rows)
            found.extend(shown)
        await prefetch_history(info, found, records_path)
