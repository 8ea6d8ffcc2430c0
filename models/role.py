"""Roles, their data scope, and which user holds which role."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, created_at_field, updated_at_field


class DataScope(StrEnum):
    """How far a role reaches, widest first; applied to the user's own department."""

    ALL = "ALL"
    DEPARTMENT_AND_BELOW = "DEPARTMENT_AND_BELOW"
    DEPARTMENT = "DEPARTMENT"
    SELF = "SELF"

    @property
    def rank(self) -> int:
        return {"ALL": 3, "DEPARTMENT_AND_BELOW": 2, "DEPARTMENT": 1, "SELF": 0}[self.value]


class Role(SQLModel, table=True):
    __tablename__ = "role"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=100)
    data_scope: str = Field(default=DataScope.SELF.value, max_length=32)
    description: str = Field(default="", max_length=255)
    is_builtin: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class UserRole(SQLModel, table=True):
    __tablename__ = "user_role"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    role_id: int = Field(foreign_key="role.id", primary_key=True, index=True)
