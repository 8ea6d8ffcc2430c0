"""The append-only event table: every write and every read of a patient's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, big_primary_key, created_at_field


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = big_primary_key()
    occurred_at: datetime = created_at_field()
    actor_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=32, index=True)
    operation: str = Field(default="", max_length=64)
    entity_type: str = Field(default="", max_length=48)
    entity_id: str = Field(default="", max_length=64)
    patient_id: int | None = Field(default=None, index=True)
    request_id: str = Field(default="", max_length=64)
    ip: str = Field(default="", max_length=64)
    outcome: str = Field(default="success", max_length=32)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
