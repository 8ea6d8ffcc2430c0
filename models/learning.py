"""Learning tasks for medical staff and their assignments."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import (
    MYSQL_TABLE_ARGS,
    LongText,
    created_at_field,
    instant_field,
    updated_at_field,
)


class AssignmentStatus(StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class LearningTask(SQLModel, table=True):
    __tablename__ = "learning_task"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=LongText)
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
