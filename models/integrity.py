"""Record integrity: amendment history, patient merges (undoable) and break-the-glass access grants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, big_primary_key, created_at_field, instant_field


class Amendment(SQLModel, table=True):
    """One change to a clinical record: the values before and after, who, when, why."""

    __tablename__ = "amendment"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = big_primary_key()
    entity_type: str = Field(max_length=32, index=True)
    entity_id: int = Field(index=True)
    patient_id: int | None = Field(default=None, index=True)
    kind: str = Field(max_length=16)  # create, update, void, merge, unmerge
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str | None = Field(default=None, max_length=500)
    actor_id: int | None = None
    request_id: str = Field(default="", max_length=64)
    at: datetime = created_at_field()


class PatientMerge(SQLModel, table=True):
    __tablename__ = "patient_merge"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    keep_id: int = Field(foreign_key="patient.id", index=True)
    merged_id: int = Field(foreign_key="patient.id", index=True)
    reason: str = Field(max_length=500)
    # Every row moved, by table, so the merge can be undone exactly.
    moved: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor_id: int | None = None
    at: datetime = created_at_field()
    undone_at: datetime | None = instant_field()
    undone_by_id: int | None = None
    undo_reason: str | None = Field(default=None, max_length=500)


class GrantKind(StrEnum):
    EMERGENCY = "emergency"
    REVEAL_PHONE = "reveal_phone"
    REVEAL_ID_NUMBER = "reveal_id_number"
    REVEAL_EMERGENCY_CONTACT_PHONE = "reveal_emergency_contact_phone"


class AccessGrant(SQLModel, table=True):
    """Break-the-glass: a reveal of a masked field, or emergency access to a patient outside one's scope."""

    __tablename__ = "access_grant"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    kind: str = Field(max_length=40)
    reason: str = Field(max_length=500)
    granted_at: datetime = created_at_field()
    expires_at: datetime = created_at_field()
    reviewed_at: datetime | None = instant_field()
    reviewed_by_id: int | None = None
    review_note: str | None = Field(default=None, max_length=500)
