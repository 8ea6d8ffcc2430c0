"""Trusted (persisted) GraphQL documents of first-party clients, loaded by `server.py load-documents`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, LongText, created_at_field


class PersistedDocument(SQLModel, table=True):
    __tablename__ = "persisted_document"
    __table_args__ = (
        UniqueConstraint("client", "sha256", name="uq_persisted_document_client_sha256"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    client: str = Field(max_length=40, index=True)
    sha256: str = Field(max_length=64, index=True)
    operation_name: str | None = Field(default=None, max_length=100)
    document: str = Field(sa_column=Column(LongText, nullable=False))
    created_at: datetime = created_at_field()
