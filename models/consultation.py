"""Consultations: a patient's conversations with physicians and their messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from models.base import (
    MYSQL_TABLE_ARGS,
    LongText,
    UTCDateTime,
    big_primary_key,
    created_at_field,
    instant_field,
)
from models.moderation import ContentStatus


class MessageKind(StrEnum):
    USER = "user"
    SYSTEM = "system"


class Conversation(SQLModel, table=True):
    """A patient (their mini-program account) and one physician."""

    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("patient_user_id", "physician_id", name="uq_conversation_pair"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    patient_user_id: int = Field(foreign_key="app_user.id", index=True)
    physician_id: int = Field(foreign_key="app_user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    created_at: datetime = created_at_field()
    # The newest message's id: conversations list most recently active first (an integer keyset).
    last_message_id: int = Field(default=0, sa_type=BigInteger, index=True)
    last_message_at: datetime = created_at_field()


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_conversation_sent", "conversation_id", "id"),
        Index("ix_message_recipient_unread", "recipient_id", "read_at"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = big_primary_key()
    conversation_id: int = Field(foreign_key="conversation.id")
    sender_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)  # None: the system
    recipient_id: int | None = Field(default=None, foreign_key="app_user.id")  # None: both participants
    kind: str = Field(default=MessageKind.USER.value, max_length=16)
    body: str = Field(default="", sa_type=LongText)  # plain text, never rendered as HTML
    image_id: int | None = Field(default=None, foreign_key="upload.id")
    status: str = Field(default=ContentStatus.VISIBLE.value, max_length=16, index=True)
    moderation_reason: str | None = Field(default=None, max_length=200)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    read_at: datetime | None = instant_field()
    deleted_at: datetime | None = instant_field()
    deleted_by_id: int | None = Field(default=None, foreign_key="app_user.id")


# ---- health education ----------------------------------------------------------------------------
