"""FHIR bulk data exports: one row per export, its progress saved after every step so a restarted export resumes
where it stopped (resolvers/fhir/export.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, LongText, created_at_field, instant_field, updated_at_field


class ExportStatus(StrEnum):
    ACCEPTED = "accepted"  # kicked off, no step done yet
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # DELETE of its status URL: files deleted, the status URL answers 404
    EXPIRED = "expired"  # completed, and its files deleted after FHIR_EXPORT_KEEP_HOURS


class ExportLevel(StrEnum):
    GROUP = "group"  # Group/{departmentId}/$export: the patients of a department and those below it
    PATIENT = "patient"  # Patient/$export: every patient in the requester's reach


class FhirExport(SQLModel, table=True):
    __tablename__ = "fhir_export"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: str = Field(primary_key=True, max_length=32)  # random: the status and file URLs carry it
    requested_by_id: int = Field(foreign_key="app_user.id", index=True)
    # The export reads as this session's account: it stops when the session ends (logout, revocation, expiry).
    # Empty for an export run by the operator's command line (server.py export-fhir), which the job leaves alone.
    session_id: str = Field(default="", max_length=32)
    ip: str = Field(default="", max_length=64)
    level: str = Field(max_length=16)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    types: str = Field(default="", max_length=500)  # _type, comma-separated ("": every type)
    since: datetime | None = instant_field()  # _since
    request_url: str = Field(default="", sa_type=LongText)
    status: str = Field(default=ExportStatus.ACCEPTED.value, max_length=16, index=True)
    transaction_time: datetime = created_at_field()
    total_patients: int = 0
    done_patients: int = 0
    # The last patient id written: a resumed export goes on after it, its files cut back to the sizes below.
    cursor: int = 0
    # {resource type: {"count": resources, "bytes": file size}} as of the last saved step; "OperationOutcome" the
    # errors file
    outputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message: str | None = Field(default=None, max_length=500)  # why it failed: a message, never a stack trace
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    finished_at: datetime | None = instant_field()
    expires_at: datetime | None = instant_field()  # files deleted after this (FHIR_EXPORT_KEEP_HOURS)
