"""What belongs to a patient, moved and gathered by table (policies/ownership.py derives which tables).

Merging two records moves every row the duplicate owns directly (rows hanging off them follow by their own
foreign keys), undoing it moves exactly those rows back, and a patient's export gathers every owned row. A
module that adds a patient-owned table is covered here without changing this file. The callers have already
checked both patients against the caller's reach; these run inside their write unit or read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from policies.ownership import Owned, owned_tables
from resolvers.audit.unit import WriteUnit

if TYPE_CHECKING:
    from resolvers.data.context import Context

# Owned rows a patient's export leaves out, and why.
NOT_EXPORTED = {
    "patient_binding_code": "one-time codes the clinic issued; their hashes mean nothing to the patient",
}
_HIDDEN_COLUMNS = ("_hash",)  # keyed hashes of encrypted values


def _key(owned: Owned) -> Any:
    return next(iter(owned.table.primary_key.columns))


async def move_owned(unit: WriteUnit, *, from_patient: int, to_patient: int) -> dict[str, list[Any]]:
    """Every row owned directly by `from_patient` now belongs to `to_patient`: {table: moved keys}."""
    session = unit.session
    moved: dict[str, list[Any]] = {}
    for owned in owned_tables():
        if not owned.direct:
            continue
        key, column = _key(owned), owned.table.c[owned.column]
        keys = list((await session.execute(select(key).where(column == from_patient))).scalars().all())
        if keys:
            await session.execute(update(owned.table).where(key.in_(keys)).values({owned.column: to_patient}))
            moved[str(owned.table.name)] = keys
    return moved


async def restore_owned(unit: WriteUnit, moved: Mapping[str, Any], *, to_patient: int) -> None:
    """Undo `move_owned`: the rows it moved go back to `to_patient` (other keys of `moved` are ignored)."""
    session = unit.session
    direct = {str(owned.table.name): owned for owned in owned_tables() if owned.direct}
    for table_name, keys in moved.items():
        owned = direct.get(table_name)
        if owned is None or not isinstance(keys, list) or not keys:
            continue
        await session.execute(update(owned.table).where(_key(owned).in_(keys)).values({owned.column: to_patient}))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


async def owned_rows(ctx: Context, patient_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row the patient owns that their export includes, by table, oldest first; void or deleted rows
    left out (they were entered in error or withdrawn)."""
    found: dict[str, list[dict[str, Any]]] = {}
    ids: dict[str, list[Any]] = {}
    async with ctx.connection() as connection:
        for owned in owned_tables():
            table = owned.table
            column = table.c[owned.column]
            if owned.direct:
                condition = column == patient_id
            else:
                parent_ids = ids.get(owned.parent or "", [])
                if not parent_ids:
                    ids[table.name] = []
                    continue
                condition = column.in_(parent_ids)
            rows = (await connection.execute(select(table).where(condition).order_by(_key(owned)))).mappings().all()
            ids[table.name] = [row[_key(owned).name] for row in rows]
            if table.name in NOT_EXPORTED:
                continue
            found[str(table.name)] = [
                {name: _plain(value) for name, value in row.items() if not name.endswith(_HIDDEN_COLUMNS)}
                for row in rows
                if row.get("voided_at") is None and row.get("deleted_at") is None
            ]
    return found
