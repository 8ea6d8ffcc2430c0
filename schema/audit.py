"""The login log and the event table, for admins."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from core.ids import decode_optional_id, encode_id
from models.audit import Event
from models.auth import LoginLog
from resolvers.audit import log as audit_log
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection


@strawberry.type(name="LoginLogEntry")
class LoginLogType:
    id: strawberry.ID
    username: str
    user_id: strawberry.ID | None
    method: str
    success: bool
    reason: str
    ip: str
    user_agent: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: LoginLog) -> LoginLogType:
        return cls(
            id=strawberry.ID(encode_id("LoginLog", row.id)),  # type: ignore[arg-type]
            username=row.username,
            user_id=strawberry.ID(encode_id("User", row.user_id)) if row.user_id else None,
            method=row.method,
            success=row.success,
            reason=row.reason,
            ip=row.ip,
            user_agent=row.user_agent,
            created_at=row.created_at,
        )


@strawberry.type(name="AuditEvent")
class EventType:
    id: strawberry.ID
    occurred_at: datetime
    actor_id: strawberry.ID | None
    patient_id: strawberry.ID | None
    action: str
    operation: str
    entity_type: str
    entity_id: str
    request_id: str
    ip: str
    outcome: str
    detail: JSON | None

    @classmethod
    def from_row(cls, row: Event) -> EventType:
        return cls(
            id=strawberry.ID(encode_id("Event", row.id)),  # type: ignore[arg-type]
            occurred_at=row.occurred_at,
            actor_id=strawberry.ID(encode_id("User", row.actor_id)) if row.actor_id else None,
            patient_id=strawberry.ID(encode_id("Patient", row.patient_id)) if row.patient_id else None,
            action=row.action,
            operation=row.operation,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            request_id=row.request_id,
            ip=row.ip,
            outcome=row.outcome,
            detail=row.detail,  # type: ignore[arg-type]
        )


@strawberry.input
class LoginLogFilter:
    username: str | None = None
    success: bool | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.input
class AuditEventFilter:
    actor_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    action: str | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Every login attempt, newest first.")
    async def login_logs(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: LoginLogFilter | None = None
    ) -> Connection[LoginLogType]:
        f = filter or LoginLogFilter()
        filters = audit_log.LoginLogFilter(username=f.username, success=f.success, since=f.from_, until=f.to)
        page = await audit_log.list_login_logs(info.context, first=first, after=after, filters=filters)
        return connection(page, LoginLogType.from_row)

    @strawberry.field(description="The append-only event table (writes and patient-record reads), newest first.")
    async def audit_events(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: AuditEventFilter | None = None
    ) -> Connection[EventType]:
        f = filter or AuditEventFilter()
        filters = audit_log.EventFilter(
            actor_id=decode_optional_id("User", f.actor_id),
            patient_id=decode_optional_id("Patient", f.patient_id),
            action=f.action,
            since=f.from_,
            until=f.to,
        )
        page = await audit_log.list_events(info.context, first=first, after=after, filters=filters)
        return connection(page, EventType.from_row)
