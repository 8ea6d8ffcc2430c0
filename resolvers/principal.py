"""Bearer token -> Principal, checked against the session, the account and its roles every request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.errors import unauthenticated
from core.security import decode_access_token
from core.timeutil import utcnow
from models.auth import AuthSession
from models.user import DataScope, Role, User, UserRole, UserStatus
from policies.scope import widest_scope
from resolvers.context import Principal, Services

ADMIN_ROLE = "admin"
_TOUCH_EVERY = timedelta(seconds=60)


async def principal_from_token(services: Services, token: str) -> Principal:
    """Raises UNAUTHENTICATED for a bad, expired or revoked token; never falls back to anonymous."""
    settings = services.settings
    claims = decode_access_token(token, secret=settings.jwt_secret.get_secret_value())
    if claims is None:
        raise unauthenticated("Invalid or expired token")
    now = utcnow()
    async with services.db.session() as session:
        row = (
            await session.execute(
                select(AuthSession, User)
                .join(User, User.id == AuthSession.user_id)  # type: ignore[arg-type]
                .where(AuthSession.id == claims.session_id)
            )
        ).first()
        if row is None:
            raise unauthenticated("Session not found")
        auth_session, user = row
        idle_limit = auth_session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
        if (
            auth_session.user_id != claims.user_id
            or auth_session.revoked_at is not None
            or auth_session.expires_at <= now
            or idle_limit <= now
        ):
            raise unauthenticated("Session has ended")
        if user.status == UserStatus.DISABLED.value:
            raise unauthenticated("Account disabled")
        roles = (
            await session.execute(
                select(Role.key, Role.data_scope)
                .join(UserRole, UserRole.role_id == Role.id)  # type: ignore[arg-type]
                .where(UserRole.user_id == user.id)
            )
        ).all()
        if now - auth_session.last_seen_at >= _TOUCH_EVERY:
            await session.execute(
                update(AuthSession).where(AuthSession.id == auth_session.id).values(last_seen_at=now)  # type: ignore[arg-type]
            )
            await session.commit()
    role_keys = tuple(sorted(key for key, _scope in roles))
    restricted = None
    if user.must_change_password:
        restricted = "password_change_required"
    elif settings.totp_required_for_admin and ADMIN_ROLE in role_keys and not user.totp_enabled:
        restricted = "totp_enrolment_required"
    return Principal(
        user_id=user.id,
        session_id=auth_session.id,
        username=user.username,
        role_keys=role_keys,
        department_id=user.department_id,
        data_scope=widest_scope(DataScope(scope) for _key, scope in roles),
        client=auth_session.client,
        restricted_reason=restricted,
    )
