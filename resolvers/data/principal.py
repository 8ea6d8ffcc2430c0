"""Bearer token -> Principal, checked against the session, the account and its roles every request."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import lost_race
from core.errors import AppError, ErrorCode
from core.security import TOKEN_EXPIRED, access_token_problem, decode_access_token
from core.timeutil import utcnow
from models.auth import AuthSession
from models.role import DataScope, Role, UserRole
from models.user import User, UserStatus
from policies.access import Principal
from policies.roles import held_to_trusted_documents, needs_second_factor
from policies.scope import widest_scope
from resolvers.data.sessioncache import Verified

if TYPE_CHECKING:
    from resolvers.data.context import Services

_TOUCH_EVERY = timedelta(seconds=60)
# A session was ended by someone else (forceLogout): every instance's open websockets check theirs at once.
SESSIONS_CHANNEL = "sessions"


# Built once (its SQL compiled once): the session, its account and the account's roles, by session id.
_PRINCIPAL = (
    select(
        AuthSession.user_id,
        AuthSession.client,
        AuthSession.last_seen_at,
        AuthSession.expires_at,
        AuthSession.revoked_at,
        User.username,
        User.status,
        User.department_id,
        User.must_change_password,
        User.totp_enabled,
        Role.key,
        Role.data_scope,
    )
    .join(User, User.id == AuthSession.user_id)  # type: ignore[arg-type]
    .outerjoin(UserRole, UserRole.user_id == User.id)  # type: ignore[arg-type]
    .outerjoin(Role, Role.id == UserRole.role_id)  # type: ignore[arg-type]
    .where(AuthSession.id == bindparam("session_id"))
)


# extensions.reason of an UNAUTHENTICATED answer: what the client can do about it
SESSION_ENDED = "SESSION_ENDED"  # logged out, revoked, idle too long or past its life: log in again
ACCOUNT_DISABLED = "ACCOUNT_DISABLED"  # an administrator closed the account
# roles withheld from a session (its schema is the `authenticated` one: me, completeProfile, changePassword...)
PASSWORD_CHANGE_REQUIRED = "password_change_required"
TOTP_ENROLMENT_REQUIRED = "totp_enrolment_required"
ACCOUNT_PENDING = "account_pending"  # asked for a console account: nothing until an admin assigns roles


def _refused(message: str, reason: str) -> AppError:
    return AppError(ErrorCode.UNAUTHENTICATED, message, reason=reason)


async def principal_from_token(
    services: Services,
    token: str,
    *,
    connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = None,
    recent: bool = False,
) -> Principal:
    """Raises UNAUTHENTICATED for a bad, expired or revoked token; never falls back to anonymous.

    With `recent` (the HTTP endpoint's requests), a session verified less than SESSION_CACHE_SECONDS ago is
    trusted from `services.sessions` (resolvers/data/sessioncache.py); websockets' checks before each delivery,
    the metrics and FHIR endpoints always ask the database. Otherwise one statement: the session, its account
    and the account's roles (one row per role, or one row with no role). `connection` is the request's
    connection when there is one (autocommit, as is a connection of its own otherwise: the touch below is one
    statement).
    """
    settings = services.settings
    secret = settings.jwt_secret.get_secret_value()
    claims = decode_access_token(token, secret=secret)
    if claims is None:
        problem = access_token_problem(token, secret=secret)
        if problem == TOKEN_EXPIRED:
            raise _refused("The access token has expired: refresh it (refreshToken) and retry", problem)
        raise _refused("The access token is not valid: log in again", problem)
    now = utcnow()
    cache = services.sessions
    if cache is not None and recent:
        hit = cache.get(claims.session_id)
        if hit is not None and hit.principal.user_id == claims.user_id and now - hit.last_seen_at < _TOUCH_EVERY:
            if hit.expires_at <= now:  # (idle: seen less than _TOUCH_EVERY ago)
                raise _refused("The session has ended: log in again", SESSION_ENDED)
            return hit.principal
    generation, checked_at = (cache.generation if cache is not None else 0), time.monotonic()
    async with (connection or services.db.connection)() as conn:
        rows = (await conn.execute(_PRINCIPAL, {"session_id": claims.session_id})).all()
        if not rows:
            raise _refused("The session has ended: log in again", SESSION_ENDED)
        first = rows[0]
        idle_limit = first.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
        if (
            first.user_id != claims.user_id
            or first.revoked_at is not None
            or first.expires_at <= now
            or idle_limit <= now
        ):
            raise _refused("The session has ended: log in again", SESSION_ENDED)
        if first.status == UserStatus.DISABLED.value:
            raise _refused("The account is disabled", ACCOUNT_DISABLED)
        last_seen_at = first.last_seen_at
        if now - last_seen_at >= _TOUCH_EVERY:
            last_seen_at = now
            try:
                await conn.execute(
                    update(AuthSession).where(AuthSession.id == claims.session_id).values(last_seen_at=now)  # type: ignore[arg-type]
                )
            except DBAPIError as error:
                # Another instance touched the session at the same moment (a Galera certification failure of this
                # one-statement write): the session was seen either way.
                if not lost_race(error):
                    raise
    roles = [(row.key, row.data_scope) for row in rows if row.key is not None]
    role_keys = tuple(sorted(key for key, _scope in roles))
    restricted = None
    if first.status == UserStatus.PENDING.value:
        restricted = ACCOUNT_PENDING
    elif first.must_change_password:
        restricted = PASSWORD_CHANGE_REQUIRED
    elif (
        settings.totp_required_for_admin and not first.totp_enabled and needs_second_factor(services.policy, role_keys)
    ):
        restricted = TOTP_ENROLMENT_REQUIRED
    principal = Principal(
        user_id=claims.user_id,
        session_id=claims.session_id,
        username=first.username,
        role_keys=role_keys,
        department_id=first.department_id,
        data_scope=widest_scope(DataScope(scope) for _key, scope in roles),
        client=first.client,
        restricted_reason=restricted,
        trusted_documents_only=held_to_trusted_documents(first.client, role_keys),
    )
    if cache is not None:
        cache.put(claims.session_id, Verified(principal, first.expires_at, last_seen_at, checked_at), generation)
    return principal


async def principal_of_session(services: Services, *, session_id: str, user_id: int) -> Principal:
    """The principal a session stands for now, for work it asked for that runs after its request (a FHIR bulk
    export): its account's current roles and department, UNAUTHENTICATED once the session is revoked, past its
    life or its account disabled. Idleness does not end such work (the request that asked for it was live), and
    the session is not touched."""
    async with services.db.connection() as conn:
        rows = (await conn.execute(_PRINCIPAL, {"session_id": session_id})).all()
    now = utcnow()
    if not rows or rows[0].user_id != user_id or rows[0].revoked_at is not None or rows[0].expires_at <= now:
        raise _refused("The session that asked for this has ended", SESSION_ENDED)
    first = rows[0]
    if first.status == UserStatus.DISABLED.value:
        raise _refused("The account is disabled", ACCOUNT_DISABLED)
    roles = [(row.key, row.data_scope) for row in rows if row.key is not None]
    return Principal(
        user_id=user_id,
        session_id=session_id,
        username=first.username,
        role_keys=tuple(sorted(key for key, _scope in roles)),
        department_id=first.department_id,
        data_scope=widest_scope(DataScope(scope) for _key, scope in roles),
        client=first.client,
        restricted_reason="password_change_required" if first.must_change_password else None,
    )


_ACCOUNT = (
    select(User.username, User.status, User.department_id, Role.key, Role.data_scope)
    .outerjoin(UserRole, UserRole.user_id == User.id)  # type: ignore[arg-type]
    .outerjoin(Role, Role.id == UserRole.role_id)  # type: ignore[arg-type]
    .where(User.id == bindparam("user_id"))
)


async def principal_of_account(services: Services, *, user_id: int) -> Principal:
    """An account's principal without a session: for the operator's command line acting as a named account (its
    roles, department and data scope), never for anything a client sends."""
    async with services.db.connection() as conn:
        rows = (await conn.execute(_ACCOUNT, {"user_id": user_id})).all()
    if not rows:
        raise _refused("No such account", SESSION_ENDED)
    if rows[0].status == UserStatus.DISABLED.value:
        raise _refused("The account is disabled", ACCOUNT_DISABLED)
    roles = [(row.key, row.data_scope) for row in rows if row.key is not None]
    return Principal(
        user_id=user_id,
        username=rows[0].username,
        role_keys=tuple(sorted(key for key, _scope in roles)),
        department_id=rows[0].department_id,
        data_scope=widest_scope(DataScope(scope) for _key, scope in roles),
        client="command-line",
    )
