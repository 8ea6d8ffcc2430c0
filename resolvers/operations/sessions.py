"""Online sessions: who is logged in now, from where and with what; and ending a session at once.

The sessions a caller sees and may end are those of the table's reach (policies/tables.py): their own, and those
of staff in the departments of their data scope (a department admin: their department and below). Ending one
also needs the session's account to hold no role beyond the caller's (as changing that account would).

A session ended here fails on its next request on every instance (sessions are read from the database on every
request, resolvers/data/principal.py); the notice on SESSIONS_CHANNEL makes every instance's open websockets of
that session close at once instead of at their next periodic check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_

from core.errors import conflict, forbidden
from core.timeutil import utcnow
from core.validation import text
from models.auth import AuthSession
from models.role import DataScope, Role, UserRole
from models.user import User
from policies.roles import may_assign
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.data.principal import SESSIONS_CHANNEL

FORCED = "forced_logout"


@dataclass
class SessionFilter:
    user_id: int | None = None
    client: str | None = None
    search: str | None = None  # part of the username or display name


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _online(ctx: Context) -> list[Any]:
    now = utcnow()
    idle = timedelta(minutes=ctx.settings.session_idle_minutes)
    return [AuthSession.revoked_at.is_(None), AuthSession.expires_at > now, AuthSession.last_seen_at > now - idle]


async def online_sessions(
    ctx: Context, *, first: int | None, after: str | None, filters: SessionFilter
) -> Page[AuthSession]:
    """Sessions that have not ended (not revoked, not expired, used within SESSION_IDLE_MINUTES)."""
    statement = await ctx.data.select(AuthSession, then=lambda s: s.where(*_online(ctx)))
    if filters.user_id is not None:  # a user out of reach is NOT_FOUND, as everywhere (not an empty page)
        await ctx.data.get(User, filters.user_id, what="User")
        statement = statement.where(AuthSession.user_id == filters.user_id)
    if filters.client:
        statement = statement.where(AuthSession.client == filters.client)
    if filters.search and filters.search.strip():
        pattern = "%" + _escape_like(filters.search.strip()[:64]) + "%"
        statement = statement.where(
            exists().where(
                User.id == AuthSession.user_id,
                or_(User.username.like(pattern, escape="\\"), User.display_name.like(pattern, escape="\\")),
            )
        )
    return await ctx.data.page(statement, keys=[AuthSession.id], key_of=lambda row: [row.id], first=first, after=after)


async def force_logout(ctx: Context, *, session_id: str, reason: str) -> AuthSession:
    """End a session now: its access token fails on the next request, its websockets close."""
    why = text(reason, "reason", limit=500, required=True)
    data = ctx.data
    async with data.write(operation="forceLogout", action="logout", entity_type="Session") as unit:
        row: AuthSession = await unit.get(AuthSession, session_id, what="Session")  # type: ignore[arg-type]
        if row.revoked_at is not None:
            raise conflict("This session has ended already")
        if row.user_id != ctx.principal.user_id:
            await _check_roles_covered(ctx, row.user_id)
        now = utcnow()
        ended = await unit.execute(
            (await data.update(AuthSession))
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=FORCED)
        )
        if not ended:
            raise conflict("This session has ended already")
        unit.detach(row)
        row.revoked_at, row.revoke_reason = now, FORCED
        unit.entity_id = session_id
        unit.detail = {"userId": row.user_id, "client": row.client, "reason": why}
    await ctx.services.notifier.publish(SESSIONS_CHANNEL)
    return row


async def _check_roles_covered(ctx: Context, user_id: int) -> None:
    """Whoever ends another's session must reach every role of that account (no ending an admin's session from
    a department admin's chair)."""
    statement = await ctx.data.select(
        Role,
        Role.key,
        Role.data_scope,
        then=lambda s: s.join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id),
    )
    access = await ctx.access()
    for key, scope in await ctx.data.rows(statement):
        if not may_assign(access, ctx.services.policy, key, DataScope(scope)):
            raise forbidden("That account holds a role beyond yours: its sessions are not yours to end")
