"""The login log and the event table, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from core.ids import decode_optional_id, encode_id
from models.audit import Event
from models.auth import LoginLog
from resolvers.audit import log as audit_log
from resolvers.audit import oplog
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


@strawberry.type(name="OperationLogEntry", description="One mutation the API ran: who, what, with what, how it ended.")
class OperationLogType:
    id: strawberry.ID = strawberry.field(description="The event's id.")
    occurred_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    actor_id: strawberry.ID | None = strawberry.field(description="Who ran it (null: nobody logged in).")
    actor_username: str | None = strawberry.field(description="Their username.")
    operation: str = strawberry.field(description="The mutation's name (`createDepartment`).")
    variables: JSON = strawberry.field(
        description="Its arguments: IDs, enums, booleans and allow-listed values; anything else `[redacted]`, "
        "secrets never."
    )
    result: str = strawberry.field(description="OK, or the error code it was refused with (FORBIDDEN, CONFLICT...).")
    duration_ms: int | None = strawberry.field(description="How long the mutation had run when it was recorded.")
    ip: str = strawberry.field(description="The client's address.")
    user_agent: str = strawberry.field(description="The client's User-Agent.")
    entity_type: str = strawberry.field(description="The kind of record it changed.")
    entity_id: str = strawberry.field(description="Which one (the record's own key).")

    @classmethod
    def of(cls, row: Event, names: dict[int, str]) -> OperationLogType:
        return cls(
            id=strawberry.ID(encode_id("Event", row.id)),  # type: ignore[arg-type]
            occurred_at=row.occurred_at,
            actor_id=strawberry.ID(encode_id("User", row.actor_id)) if row.actor_id else None,
            actor_username=names.get(row.actor_id) if row.actor_id else None,
            operation=row.operation,
            variables=row.variables or {},  # type: ignore[arg-type]
            result=oplog.result_of(row.outcome),
            duration_ms=row.duration_ms,
            ip=row.ip,
            user_agent=row.user_agent,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
        )


@strawberry.input(description="Which entries of the operation log; every condition given must hold.")
class OperationLogFilter:
    actor: strawberry.ID | None = strawberry.field(default=None, description="Run by this user.")
    operation: str | None = strawberry.field(default=None, description="This mutation (`updateUser`).")
    result: str | None = strawberry.field(default=None, description="OK, or an error code (`FORBIDDEN`).")
    from_: datetime | None = strawberry.field(default=None, name="from", description="At or after this instant.")
    to: datetime | None = strawberry.field(default=None, description="Before this instant.")


@strawberry.type(name="OperationLogExport", description="The filtered operation log as a CSV file.")
class OperationLogExportType:
    filename: str = strawberry.field(description="A file name for the download.")
    content_type: str = strawberry.field(description="text/csv; charset=utf-8")
    rows: int = strawberry.field(description="How many entries it holds (at most 10,000, newest first).")
    csv: str = strawberry.field(description="The file: spreadsheet formulas in cells are escaped with an apostrophe.")


def _oplog_filter(value: OperationLogFilter | None) -> oplog.OperationLogFilter:
    f = value or OperationLogFilter()
    return oplog.OperationLogFilter(
        actor_id=decode_optional_id("User", f.actor), operation=f.operation, result=f.result, since=f.from_, until=f.to
    )


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

    @strawberry.field(description="Every mutation run, newest first (department admins: by their departments' staff).")
    async def operation_logs(
        self,
        info: Info,
        filter: Annotated[OperationLogFilter | None, strawberry.argument(description="Which entries.")] = None,
        first: int | None = 20,
        after: Annotated[str | None, strawberry.argument(description="The cursor to continue after.")] = None,
    ) -> Connection[OperationLogType]:
        page = await oplog.list_operation_logs(info.context, first=first, after=after, filters=_oplog_filter(filter))
        names = await oplog.actor_names(info.context, (row.actor_id for row in page.items))
        return connection(page, lambda row: OperationLogType.of(row, names))

    @strawberry.field(description="The filtered operation log as CSV, for a spreadsheet.")
    async def operation_log_csv(
        self,
        info: Info,
        filter: Annotated[OperationLogFilter | None, strawberry.argument(description="Which entries.")] = None,
    ) -> OperationLogExportType:
        text, rows = await oplog.export_csv(info.context, _oplog_filter(filter))
        return OperationLogExportType(
            filename="operation-log.csv", content_type="text/csv; charset=utf-8", rows=rows, csv=text
        )
