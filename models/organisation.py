"""Departments (a tree) and positions (job titles)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import event
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, created_at_field, updated_at_field


class Department(SQLModel, table=True):
    __tablename__ = "department"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    code: str = Field(max_length=40, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    sort_order: int = 0
    # A disabled department takes no new users or patients and leaves the pickers; what it holds stays.
    disabled: bool = False
    # No two departments under one parent share a name (without case or surrounding space): a unique key over the
    # parent and the folded name, so two writers racing past the resolver's check cannot both commit (kept in step
    # on every ORM write below; a digest, so the comparison is the same on every database and collation).
    sibling_key: str = Field(default="", max_length=64, unique=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


def sibling_key(parent_id: int | None, name: str) -> str:
    """The department's key among its siblings: its parent (0 at the root) and its name, folded."""
    return hashlib.sha256(f"{parent_id or 0}\x00{name.strip().casefold()}".encode()).hexdigest()


@event.listens_for(Department, "before_insert")
@event.listens_for(Department, "before_update")
def _sibling_key_before_write(_mapper: object, _connection: object, target: Department) -> None:
    target.sibling_key = sibling_key(target.parent_id, target.name)


class Position(SQLModel, table=True):
    __tablename__ = "position"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=255)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
