"""Patient engagement and staff learning: uploads, consultations, health education, comments,
the moderation keyword list, and learning tasks."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from models.base import (
    MYSQL_TABLE_ARGS,
    UTCDateTime,
    big_primary_key,
    created_at_field,
    instant_field,
    updated_at_field,
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


class MessageKind(StrEnum):
    USER = "user"
    SYSTEM = "system"


class ContentStatus(StrEnum):
    """A comment's or message's moderation state."""

    VISIBLE = "visible"
    HELD = "held"
    HIDDEN = "hidden"


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
    body: str = Field(default="", sa_type=Text)  # plain text, never rendered as HTML
    image_id: int | None = Field(default=None, foreign_key="upload.id")
    status: str = Field(default=ContentStatus.VISIBLE.value, max_length=16, index=True)
    moderation_reason: str | None = Field(default=None, max_length=200)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    read_at: datetime | None = instant_field()
    deleted_at: datetime | None = instant_field()
    deleted_by_id: int | None = Field(default=None, foreign_key="app_user.id")


# ---- health education ----------------------------------------------------------------------------


class PublicationStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Article(SQLModel, table=True):
    __tablename__ = "article"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    summary: str = Field(default="", max_length=500)
    body_markdown: str = Field(default="", sa_type=Text)
    body_html: str = Field(default="", sa_type=Text)  # rendered and sanitised when written
    cover_url: str | None = Field(default=None, max_length=500)
    keywords: str = Field(default="", max_length=500)  # comma-separated
    status: str = Field(default=PublicationStatus.DRAFT.value, max_length=16, index=True)
    author_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    published_at: datetime | None = instant_field(index=True)
    view_count: int = 0
    deleted_at: datetime | None = instant_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Video(SQLModel, table=True):
    __tablename__ = "video"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    video_url: str = Field(max_length=500)
    duration_seconds: int = 0
    cover_url: str | None = Field(default=None, max_length=500)
    status: str = Field(default=PublicationStatus.DRAFT.value, max_length=16, index=True)
    author_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    published_at: datetime | None = instant_field(index=True)
    view_count: int = 0
    deleted_at: datetime | None = instant_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ContentKind(StrEnum):
    ARTICLE = "article"
    VIDEO = "video"


class Comment(SQLModel, table=True):
    __tablename__ = "comment"
    __table_args__ = (
        Index("ix_comment_target", "target_kind", "target_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=16)
    target_id: int
    parent_id: int | None = Field(default=None, foreign_key="comment.id")  # a staff reply
    commenter_id: int = Field(foreign_key="app_user.id", index=True)
    body: str = Field(sa_type=Text)  # plain text, never rendered as HTML
    status: str = Field(default=ContentStatus.VISIBLE.value, max_length=16, index=True)
    moderation_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    reviewed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    reviewed_at: datetime | None = instant_field()


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


class AssignmentStatus(StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class LearningTask(SQLModel, table=True):
    __tablename__ = "learning_task"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    # [{"kind": "article" | "video" | "link", "ref": id or URL, "title": str}]
    materials: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    department_id: int = Field(foreign_key="department.id", index=True)
    due_date: date
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    deleted_at: datetime | None = instant_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class LearningAssignment(SQLModel, table=True):
    __tablename__ = "learning_assignment"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id", name="uq_learning_assignment_task_user"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="learning_task.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    status: str = Field(default=AssignmentStatus.ASSIGNED.value, max_length=16)
    progress: int = 0  # percent
    assigned_at: datetime = created_at_field()
    completed_at: datetime | None = instant_field()
