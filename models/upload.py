"""The platform's own image storage: uploads kept in the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlalchemy.dialects import mysql
from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    created_at_field,
)

# Base64 text (aiomysql 0.3 cannot bind bytes parameters), up to 16 MB on MySQL (MEDIUMTEXT); the upload
# limit itself is far lower (resolvers/uploads.py).
ImageText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class Upload(SQLModel, table=True):
    """A file a user uploaded (images only): kept in the database, so every instance serves the same bytes."""

    __tablename__ = "upload"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="app_user.id", index=True)
    content_type: str = Field(max_length=40)
    byte_size: int
    sha256: str = Field(max_length=64)
    data_base64: str = Field(sa_type=ImageText)
    created_at: datetime = created_at_field()


# ---- consultations -------------------------------------------------------------------------------
