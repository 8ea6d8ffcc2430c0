"""Which rows refer to a row, derived from the models' foreign keys: a table added later is covered the day it
declares its foreign key. Deleting reference data (a department, a position) asks this first.

Counted over every row, whoever asks: a row the caller cannot see still holds the reference.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Column, Table, select
from sqlmodel import SQLModel

from policies.enforce import mark


@cache
def referring_columns(table_name: str) -> tuple[tuple[Table, Column[Any]], ...]:
    """Every (table, column) with a foreign key to `table_name`'s primary key, in a stable order."""
    found: list[tuple[Table, Column[Any]]] = []
    for table in SQLModel.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table.name == table_name:
                found.append((table, key.parent))
    return tuple(sorted(found, key=lambda pair: (pair[0].name, pair[1].name)))


async def referring_tables(unit: Any, model: Any, row_id: int) -> list[str]:
    """The names of the tables holding a row that refers to `model`'s row `row_id` (`unit`: a write unit)."""
    tables: list[str] = []
    for table, column in referring_columns(model.__tablename__):
        statement = mark(select(column).select_from(table).where(column == row_id).limit(1), "unscoped")
        if await unit.rows(statement) and table.name not in tables:
            tables.append(table.name)
    return tables
