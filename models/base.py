"""Shared column types: aware UTC instants, utf8mb4 tables, timestamps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from core.timeutil import as_utc, utcnow

# Every table: utf8mb4 on MySQL/MariaDB so Chinese names and notes round-trip.
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}

_E = TypeVar("_E", bound=Enum)


def enum_member(kind: type[_E], value: Any) -> _E:
    """`kind(value)`, without the Enum call machinery when `value` is a member's value (a column read back):
    rows of a page are turned into members by the hundred."""
    try:
        found = kind._value2member_map_.get(value)
    except TypeError:  # unhashable: let the Enum say what it makes of it
        found = None
    return found if found is not None else kind(value)  # type: ignore[return-value]


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (microseconds kept on MySQL), always returns an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use an aware UTC datetime")
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def updated_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def instant_field(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


# 64-bit keys for tables that grow without bound; SQLite auto-increments only INTEGER PRIMARY KEY.
BigKey = BigInteger().with_variant(Integer(), "sqlite")

# Free text. MariaDB's TEXT holds 65,535 bytes, not characters (a Chinese character is 3 bytes, an emoji 4): on
# MySQL every text column is MEDIUMTEXT (16 MB), larger than any request may be (MAX_REQUEST_BYTES), so no text
# a client sends can outgrow its column (tests/test_text_limits.py checks every column).
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


def big_primary_key() -> Any:
    return Field(default=None, primary_key=True, sa_type=BigKey)


class EncryptedString(TypeDecorator[str]):
    """Encrypted at rest (core.crypto); the attribute holds the plain value. Never compare on it in SQL:
    search through the keyed-hash column beside it."""

    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        from core.crypto import cipher

        return None if value is None else cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        from core.crypto import cipher

        return None if value is None else cipher().decrypt(value)


def columns_of(model: Any) -> list[Any]:
    """Every column of a table, to select rows rather than ORM objects on read paths.

    A Row reads like the model (`row.visit_date`) for the schema's `from_row` constructors, without the
    ORM's identity map, instance state and change tracking: for records that are only shown.
    """
    return list(model.__table__.columns)


class ProjectedRow(tuple):  # type: ignore[type-arg]
    """Some of a table's columns, read like the model (`row.visit_date`): a result row kept as a tuple.

    One class per (table, loaded columns): a loaded column is a C-level item getter, a column the query
    did not load reads as None (the projection, schema/engine/projection.py, loads every column a selected field
    reads, so an unloaded column is one no selected field shows), and a name that is not a column of the
    table is an AttributeError, as on the model. Built from a row in one tuple copy, no dict per row.
    """

    __slots__ = ()


_ROW_TYPES: dict[tuple[Any, tuple[str, ...]], type[ProjectedRow]] = {}


def projected_row_type(model: Any, names: Sequence[str]) -> type[ProjectedRow]:
    """The row class of `model` for rows holding the columns `names`, in that order."""
    key = (model, tuple(names))
    row_type = _ROW_TYPES.get(key)
    if row_type is None:
        attributes: dict[str, Any] = {"__slots__": ()}
        attributes.update({column.name: None for column in model.__table__.columns})
        attributes.update({name: property(itemgetter(index)) for index, name in enumerate(key[1])})
        row_type = _ROW_TYPES[key] = type(f"{model.__name__}Row", (ProjectedRow,), attributes)
    return row_type
