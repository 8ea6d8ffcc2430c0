"""Health education: articles, videos and the comments on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    LongText,
    created_at_field,
    instant_field,
    updated_at_field,
)
from models.moderation import ContentStatus


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
    body_markdown: str = Field(default="", sa_type=LongText)
    body_html: str = Field(default="", sa_type=LongText)  # rendered and sanitised when written
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
    description: str = Field(default="", sa_type=LongText)
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
    # What the comment showed of its writer when written (a later change of name relabels nothing), and the
    # staff title of their role then (None for patients): titles come from roles, never from names.
    commenter_name: str | None = Field(default=None, max_length=100)
    commenter_title: str | None = Field(default=None, max_length=100)
    body: str = Field(sa_type=LongText)  # plain text, never rendered as HTML
    status: str = Field(default=ContentStatus.VISIBLE.value, max_length=16, index=True)
    moderation_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    reviewed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    reviewed_at: datetime | None = instant_field()
