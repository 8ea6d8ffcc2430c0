"""The platform's own image storage: uploads kept in the database."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    LongText,
    created_at_field,
)


class Upload(SQLModel, table=True):
    """A file a user uploaded (images only): kept in the database, so every instance serves the same bytes."""

    __tablename__ = "upload"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="app_user.id", index=True)
    content_type: str = Field(max_length=40)
    byte_size: int
    sha256: str = Field(max_length=64)
    data_base64: str = Field(sa_type=LongText)
    created_at: datetime = created_at_field()


# ---- consultations -------------------------------------------------------------------------------
