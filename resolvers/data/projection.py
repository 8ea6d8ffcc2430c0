"""Reads that load only some columns of a table (the ones the client's selection shows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, select

from models.base import ProjectedRow, columns_of, projected_row_type

Columns = tuple[str, ...] | None
"""Column names to load, or None for every column."""


def select_columns(model: Any, columns: Columns) -> Select[Any]:
    """SELECT those columns of the model's table (all of them for None)."""
    if columns is None:
        return select(*columns_of(model))
    table = model.__table__
    return select(*(table.c[name] for name in columns))


def as_rows(model: Any, columns: Columns, rows: Iterable[Any]) -> list[ProjectedRow]:
    """Result rows of `select_columns` as rows that read like the model."""
    names: Sequence[str] = columns if columns is not None else [column.name for column in columns_of(model)]
    row_type = projected_row_type(model, names)
    return [row_type(row) for row in rows]
