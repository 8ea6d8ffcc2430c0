"""Reading the login log and the event table, newest first, by cursor, within the caller's reach."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.timeutil import as_utc
from models.audit import Event
from models.auth import LoginLog

if TYPE_CHECKING:
    from resolvers.data.context import Context
    from resolvers.data.pagination import Page


@dataclass
class LoginLogFilter:
    username: str | None = None
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_login_logs(
    ctx: Context, *, first: int | None, after: str | None, filters: LoginLogFilter
) -> Page[LoginLog]:
    statement = await ctx.data.select(LoginLog)
    if filters.username:
        statement = statement.where(LoginLog.username == filters.username.strip().lower())
    if filters.success is not None:
        statement = statement.where(LoginLog.success == filters.success)
    if filters.since:
        statement = statement.where(LoginLog.created_at >= as_utc(filters.since))  # a time without a zone is UTC
    if filters.until:
        statement = statement.where(LoginLog.created_at < as_utc(filters.until))
    return await ctx.data.page(statement, keys=[LoginLog.id], first=first, after=after, descending=True)


@dataclass
class EventFilter:
    actor_id: int | None = None
    patient_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(ctx: Context, *, first: int | None, after: str | None, filters: EventFilter) -> Page[Event]:
    statement = await ctx.data.select(Event)
    if filters.actor_id is not None:
        statement = statement.where(Event.actor_id == filters.actor_id)
    if filters.patient_id is not None:
        statement = statement.where(Event.patient_id == filters.patient_id)
    if filters.action:
        statement = statement.where(Event.action == filters.action)
    if filters.since:
        statement = statement.where(Event.occurred_at >= as_utc(filters.since))  # a time without a zone is UTC
    if filters.until:
        statement = statement.where(Event.occurred_at < as_utc(filters.until))
    return await ctx.data.page(statement, keys=[Event.id], first=first, after=after, descending=True)
