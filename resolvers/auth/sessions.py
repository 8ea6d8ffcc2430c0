"""Sessions and their tokens: a session per login, a 15-minute access token, rotating refresh tokens.

A refresh token works once; one that comes back after use ends its whole session (someone holds a copy).
Refreshing is system work: the caller is nobody yet, the session is found by its token.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.errors import unauthenticated
from core.security import issue_access_token, new_refresh_token, token_digest
from core.timeutil import utcnow
from models.auth import AuthSession, RefreshToken
from models.user import User, UserStatus
from policies.roles import MINI_PROGRAM_CLIENT
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.principal import SESSIONS_CHANNEL

CONSOLE = "console"
GRAPHIQL = "graphiql"  # a console session opened from the GraphiQL page (onlineSessions shows it)
MINI_PROGRAM = MINI_PROGRAM_CLIENT
REPLAYED = "refresh_token_replayed"


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


async def open_session(ctx: Context, unit: WriteUnit, user: User, client: str) -> Tokens:
    """A new session for the user, in the unit that logs them in."""
    now = utcnow()
    auth_session = AuthSession(
        id=secrets.token_hex(16),
        user_id=user.id,  # type: ignore[arg-type]
        client=client,
        ip=ctx.ip,
        user_agent=ctx.user_agent[:255],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=ctx.settings.refresh_token_days),
    )
    unit.add(auth_session)
    return _issue(ctx, unit, auth_session, user)


def _issue(ctx: Context, unit: WriteUnit, auth_session: AuthSession, user: User) -> Tokens:
    refresh_token = new_refresh_token()
    unit.add(RefreshToken(token_hash=token_digest(refresh_token), session_id=auth_session.id))
    access, expires_in = issue_access_token(
        secret=ctx.settings.jwt_secret.get_secret_value(),
        user_id=user.id,  # type: ignore[arg-type]
        session_id=auth_session.id,
        client=auth_session.client,
        minutes=ctx.settings.access_token_minutes,
    )
    return Tokens(access_token=access, refresh_token=refresh_token, expires_in=expires_in, user=user)


async def revoke_sessions(ctx: Context, unit: WriteUnit, *, user_id: int, reason: str, keep: str | None = None) -> int:
    """End the user's open sessions (but `keep`), within the caller's reach: their own, or those of a user they
    administer. How many ended."""
    statement = (await ctx.data.update(AuthSession)).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    ended = await unit.execute(statement.values(revoked_at=utcnow(), revoke_reason=reason))
    if ended:
        unit.on_commit(_sessions_ended(ctx))
    return ended


def _sessions_ended(ctx: Context) -> Callable[[], Awaitable[None]]:
    """After the commit: every instance's open websockets re-check their sessions at once."""

    async def notice() -> None:
        await ctx.services.notifier.publish(SESSIONS_CHANNEL)

    return notice


async def logout(ctx: Context) -> bool:
    session_id = ctx.principal.session_id
    async with ctx.data.write(operation="logout", action="logout", entity_type="Session") as unit:
        unit.entity_id = session_id or ""
        statement = (await ctx.data.update(AuthSession)).where(
            AuthSession.id == session_id,
            AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
        )
        await unit.execute(statement.values(revoked_at=utcnow(), revoke_reason="logout"))
        unit.on_commit(_sessions_ended(ctx))
    return True


# ---- refreshing ----------------------------------------------------------------------------------


class _Refused(Exception):
    """Ends a refresh's write unit with nothing written; the UNAUTHENTICATED raised after it is recorded as a
    refused mutation (schema/engine/refusals.py), as before. `replayed`: the token had been used before."""

    def __init__(self, *, replayed: bool) -> None:
        super().__init__()
        self.replayed = replayed


def _ended(ctx: Context, auth_session: AuthSession | None, user: User | None, now: datetime) -> bool:
    return (
        auth_session is None
        or user is None
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
        or auth_session.last_seen_at + timedelta(minutes=ctx.settings.session_idle_minutes) <= now
        or user.status == UserStatus.DISABLED.value
    )


async def refresh(ctx: Context, *, token: str) -> Tokens:
    system = ctx.data.unscoped("refreshing: the caller is nobody yet, the session is found by its refresh token")
    digest = token_digest(token)
    found = await ctx.data.scalars(system.select(RefreshToken.session_id).where(RefreshToken.token_hash == digest))
    if not found:
        raise unauthenticated("Invalid refresh token")
    session_id: str = found[0]
    now = utcnow()
    try:
        async with ctx.data.write(operation="refreshToken", action="login", entity_type="Session") as unit:
            unit.entity_id = session_id
            # Atomic: of two concurrent uses of one token, exactly one wins.
            claimed = await unit.execute(
                system.update(RefreshToken)
                .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None))  # type: ignore[union-attr]
                .values(used_at=now)
            )
            if not claimed:
                raise _Refused(replayed=True)
            auth_session = await unit.first(system.select(AuthSession).where(AuthSession.id == session_id))
            user = None
            if auth_session is not None:
                user = await unit.first(system.select(User).where(User.id == auth_session.user_id))
            if _ended(ctx, auth_session, user, now):
                raise _Refused(replayed=False)
            assert auth_session is not None and user is not None
            auth_session.last_seen_at = now
            unit.add(auth_session)
            return _issue(ctx, unit, auth_session, user)
    except _Refused as refused:
        if refused.replayed:
            await _end_replayed(ctx, session_id)
    raise unauthenticated("Refresh token is no longer valid; log in again")


async def _end_replayed(ctx: Context, session_id: str) -> None:
    """A used refresh token came back: someone holds a copy. End the whole session (its family of tokens)."""
    system = ctx.data.unscoped("a replayed refresh token ends its session, whoever sent it")
    async with ctx.data.write(operation="refreshToken", action="logout", entity_type="Session") as unit:
        unit.entity_id = session_id
        ended = await unit.execute(
            system.update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))  # type: ignore[union-attr]
            .values(revoked_at=utcnow(), revoke_reason=REPLAYED)
        )
        unit.detail = {"reason": REPLAYED, "ended": bool(ended)}
