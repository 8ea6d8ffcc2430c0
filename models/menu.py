"""The console's menu: a tree of directories, pages and buttons, each naming what its page needs.

An entry's `needs` are schema coordinates (`Query.auditEvents`) or capabilities (`capability:...`): a user sees
the entry only when their own schema holds every one (resolvers/menu.py), so the menu follows the policy.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, created_at_field, updated_at_field


class MenuKind(StrEnum):
    DIRECTORY = "directory"
    PAGE = "page"
    BUTTON = "button"


class Menu(SQLModel, table=True):
    __tablename__ = "menu"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="menu.id", index=True)
    kind: str = Field(default=MenuKind.PAGE.value, max_length=16)
    title_zh: str = Field(max_length=100)
    title_en: str = Field(max_length=100)
    path: str = Field(default="", max_length=200)
    icon: str = Field(default="", max_length=64)
    sort_order: int = 0
    visible: bool = True
    needs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class SeededMenuEntry(SQLModel, table=True):
    """A standard menu entry once seeded (policies/menus.py) is never re-added: an admin's deletion sticks."""

    __tablename__ = "seeded_menu_entry"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    key: str = Field(primary_key=True, max_length=64)
