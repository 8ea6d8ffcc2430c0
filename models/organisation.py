"""Departments (a tree) and positions (job titles)."""

from __future__ import annotations

from datetime import datetime

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
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Position(SQLModel, table=True):
    __tablename__ = "position"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=255)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
