"""Moderation: the status of user-written text and the keyword list every comment and message passes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    created_at_field,
    updated_at_field,
)


class ContentStatus(StrEnum):
    """A comment's or message's moderation state."""

    VISIBLE = "visible"
    HELD = "held"
    HIDDEN = "hidden"


class ModerationAction(StrEnum):
    BLOCK = "block"
    HOLD = "hold"
    REPLACE = "replace"


class ModerationKeyword(SQLModel, table=True):
    __tablename__ = "moderation_keyword"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    keyword: str = Field(max_length=100, unique=True)  # normalised: NFKC, lower case
    category: str = Field(default="", max_length=50)
    action: str = Field(default=ModerationAction.BLOCK.value, max_length=16)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


# ---- learning tasks ------------------------------------------------------------------------------
