"""Claims: a row that exists once, inserted by whichever writer comes first, the others told so without an error.

`claim(unit, model, values)` inserts one row and skips a duplicate of a unique key (MariaDB `INSERT IGNORE`,
SQLite `INSERT OR IGNORE`): the id when this writer won, None when the row was there already. A writer that
loses waits for the winner's transaction (row lock on MariaDB, the write lock on SQLite) and then sees its row,
so two claims never both win. No GET_LOCK or LOCK TABLES: on Galera the loser's COMMIT fails certification with
a deadlock error instead (`lost_race`), and is a lost claim as well.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from core.db import lost_race
from policies.enforce import mark
from resolvers.audit.unit import WriteUnit

__all__ = ["claim", "lost_race"]


async def claim(unit: WriteUnit, model: Any, values: dict[str, Any]) -> int | None:
    """Insert the row in the unit's transaction unless its unique key is taken; its id, or None."""
    table = model.__table__
    statement = insert(table).values(**values).prefix_with("IGNORE", dialect="mysql")
    statement = statement.prefix_with("OR IGNORE", dialect="sqlite")
    result: Any = await unit.session.execute(mark(statement, "unscoped"))
    if not result.rowcount:
        return None
    key = result.inserted_primary_key
    return int(key[0]) if key and key[0] is not None else None
