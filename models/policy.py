"""Casbin's rule table (Alembic owns it) and the record of which default-policy lines were seeded."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS


class CasbinRule(SQLModel, table=True):
    __tablename__ = "casbin_rule"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    ptype: str = Field(max_length=8, index=True)
    v0: str = Field(default="", max_length=128)
    v1: str = Field(default="", max_length=128)
    v2: str = Field(default="", max_length=128)
    v3: str = Field(default="", max_length=128)
    v4: str = Field(default="", max_length=128)
    v5: str = Field(default="", max_length=128)


class SeededPolicyLine(SQLModel, table=True):
    """A default-policy line once seeded is never re-added, so an admin's revocation sticks."""

    __tablename__ = "seeded_policy_line"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    line: str = Field(primary_key=True, max_length=255)
