"""Logging in and out: passwords with lockout, TOTP, WeChat, rotating refresh tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import AppError, ErrorCode, bad_input, unauthenticated
from core.security import (
    check_password_policy,
    hash_password_off_loop,
    issue_access_token,
    needs_rehash,
    new_refresh_token,
    normalise_username,
    token_digest,
    verify_password_off_loop,
)
from core.timeutil import utcnow
from models.auth import AuthSession, LoginLog, RefreshToken
from models.user import User, UserStatus
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context
from resolvers.wechat import exchange_code

CONSOLE = "console"
GRAPHIQL = "graphiql"  # a console session opened from the GraphiQL page (onlineSessions shows it)
MINI_PROGRAM = "mini-program"


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


# ---- login log and lockout ---------------------------------------------------------------------


async def _log_attempt(
    ctx: Context, *, username: str, user_id: int | None, success: bool, reason: str, method: str = "password"
) -> None:
    async with ctx.db.transaction() as session:
        session.add(
            LoginLog(
                username=username[:128],
                user_id=user_id,
                method=method,
                success=success,
                reason=reason,
                ip=ctx.ip,
                user_agent=ctx.user_agent[:255],
            )
        )


async def _locked_for(ctx: Context, username: str) -> int:
    """Seconds until this source may try this account again (0: not locked)."""
    settings = ctx.settings
    now = utcnow()
    limit = settings.login_max_failures
    horizon = now - timedelta(minutes=settings.login_failure_window_minutes + settings.login_lockout_minutes)
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(LoginLog.success, LoginLog.created_at)
                .where(
                    LoginLog.username == username,
                    LoginLog.ip == ctx.ip,
                    LoginLog.reason != "locked",
                    LoginLog.created_at >= horizon,
                )
                .order_by(LoginLog.created_at.desc(), LoginLog.id.desc())  # type: ignore[union-attr]
                .limit(limit)
            )
        ).all()
    if len(rows) < limit or any(success for success, _ in rows):
        return 0
    newest, oldest = rows[0][1], rows[-1][1]
    if newest - oldest > timedelta(minutes=settings.login_failure_window_minutes):
        return 0
    until = newest + timedelta(minutes=settings.login_lockout_minutes)
    return max(0, int((until - now).total_seconds()) + 1) if until > now else 0


# ---- sessions and tokens -----------------------------------------------------------------------


async def _open_session(ctx: Context, session: AsyncSession, user: User, client: str) -> Tokens:
    settings = ctx.settings
    now = utcnow()
    auth_session = AuthSession(
        id=secrets.token_hex(16),
        user_id=user.id,  # type: ignore[arg-type]
        client=client,
        ip=ctx.ip,
        user_agent=ctx.user_agent[:255],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=settings.refresh_token_days),
    )
    session.add(auth_session)
    return await _issue(ctx, session, auth_session, user)


async def _issue(ctx: Context, session: AsyncSession, auth_session: AuthSession, user: User) -> Tokens:
    refresh = new_refresh_token()
    session.add(RefreshToken(token_hash=token_digest(refresh), session_id=auth_session.id))
    access, expires_in = issue_access_token(
        secret=ctx.settings.jwt_secret.get_secret_value(),
        user_id=user.id,  # type: ignore[arg-type]
        session_id=auth_session.id,
        client=auth_session.client,
        minutes=ctx.settings.access_token_minutes,
    )
    return Tokens(access_token=access, refresh_token=refresh, expires_in=expires_in, user=user)


async def revoke_sessions(session: AsyncSession, *, user_id: int, reason: str, keep: str | None = None) -> None:
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id,  # type: ignore[arg-type]
        AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)  # type: ignore[arg-type]
    await session.execute(statement.values(revoked_at=utcnow(), revoke_reason=reason))


# ---- operations --------------------------------------------------------------------------------


def _totp_step(secret: str, code: str) -> int | None:
    """The time step (of now and its neighbours) whose code this is, or None."""
    code = code.strip()
    if not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        if secrets.compare_digest(totp.at(moment).encode(), code.encode()):
            return int(totp.timecode(moment))
    return None


async def _use_totp_code(ctx: Context, user: User, code: str) -> bool:
    """Accept a code once: its step must be newer than the last one used (atomic, so never twice)."""
    step = _totp_step(user.totp_secret or "", code)
    if step is None:
        return False
    async with ctx.db.transaction() as session:
        claimed = await session.execute(
            update(User)
            .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))  # type: ignore[union-attr,operator]
            .values(totp_last_step=step)
        )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def login(ctx: Context, *, username: str, password: str, totp: str | None) -> Tokens:
    name = normalise_username(username)[:128]
    wait = await _locked_for(ctx, name)
    if wait:
        await _log_attempt(ctx, username=name, user_id=None, success=False, reason="locked")
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"Too many failed logins from this address; try again in {wait} seconds",
            retryAfter=wait,
        )
    async with ctx.db.session() as session:
        user = (await session.execute(select(User).where(User.username == name))).scalar_one_or_none()
    password_ok = await verify_password_off_loop(user.password_hash if user else None, password)
    if user is None or not password_ok:
        await _log_attempt(
            ctx, username=name, user_id=user.id if user else None, success=False, reason="bad_credentials"
        )
        raise unauthenticated("Invalid username or password")
    if user.status == UserStatus.DISABLED.value:
        await _log_attempt(ctx, username=name, user_id=user.id, success=False, reason="disabled")
        raise unauthenticated("This account is disabled")
    if user.totp_enabled:
        if not totp:
            await _log_attempt(ctx, username=name, user_id=user.id, success=False, reason="totp_missing")
            raise AppError(ErrorCode.UNAUTHENTICATED, "A one-time code is required", totpRequired=True)
        if not await _use_totp_code(ctx, user, totp):
            await _log_attempt(ctx, username=name, user_id=user.id, success=False, reason="totp_invalid")
            raise AppError(ErrorCode.UNAUTHENTICATED, "Invalid or already used one-time code", totpRequired=True)
    async with write_unit(ctx, operation="login", action="login", entity_type="User") as unit:
        unit.entity_id = str(user.id)
        if user.password_hash and needs_rehash(user.password_hash):
            user.password_hash = await hash_password_off_loop(password)
            unit.session.add(user)
        tokens = await _open_session(ctx, unit.session, user, GRAPHIQL if ctx.state.graphiql else CONSOLE)
        unit.session.add(
            LoginLog(
                username=name, user_id=user.id, success=True, reason="ok", ip=ctx.ip, user_agent=ctx.user_agent[:255]
            )
        )
    return tokens


async def refresh(ctx: Context, *, token: str) -> Tokens:
    digest = token_digest(token)
    now = utcnow()
    async with ctx.db.transaction() as session:
        row = (
            await session.execute(select(RefreshToken).where(RefreshToken.token_hash == digest))
        ).scalar_one_or_none()
        if row is None:
            raise unauthenticated("Invalid refresh token")
        # Atomic: of two concurrent uses of one token, exactly one wins.
        claimed = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == digest, RefreshToken.used_at.is_(None))  # type: ignore[arg-type,union-attr]
            .values(used_at=now)
        )
        auth_session = await session.get(AuthSession, row.session_id)
        user = await session.get(User, auth_session.user_id) if auth_session else None
        replayed = claimed.rowcount == 0  # type: ignore[attr-defined]
        if replayed and auth_session is not None and auth_session.revoked_at is None:
            # A used refresh token came back: someone holds a copy. End the whole family.
            auth_session.revoked_at = now
            auth_session.revoke_reason = "refresh_token_replayed"
            session.add(auth_session)
        ended = (
            auth_session is None
            or user is None
            or auth_session.revoked_at is not None
            or auth_session.expires_at <= now
            or auth_session.last_seen_at + timedelta(minutes=ctx.settings.session_idle_minutes) <= now
            or user.status == UserStatus.DISABLED.value
        )
        if replayed or ended:
            error = unauthenticated("Refresh token is no longer valid; log in again")
        else:
            assert auth_session is not None and user is not None
            auth_session.last_seen_at = now
            session.add(auth_session)
            return await _issue(ctx, session, auth_session, user)
    raise error


async def logout(ctx: Context) -> bool:
    session_id = ctx.principal.session_id
    async with write_unit(ctx, operation="logout", action="logout", entity_type="Session") as unit:
        unit.entity_id = session_id or ""
        await unit.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))  # type: ignore[arg-type,union-attr]
            .values(revoked_at=utcnow(), revoke_reason="logout")
        )
    return True


async def wechat_login(ctx: Context, *, code: str) -> Tokens:
    try:
        openid = await exchange_code(ctx.settings, code)
    except AppError as error:
        await _log_attempt(ctx, username="", user_id=None, success=False, reason=error.code.lower(), method="wechat")
        raise
    async with write_unit(ctx, operation="wechatLogin", action="login", entity_type="User") as unit:
        user = (await unit.session.execute(select(User).where(User.wechat_openid == openid))).scalar_one_or_none()
        if user is None:
            user = User(wechat_openid=openid, status=UserStatus.ACTIVE.value)
            unit.session.add(user)
            await unit.session.flush()
            unit.detail["created"] = True
        if user.status == UserStatus.DISABLED.value:
            raise unauthenticated("This account is disabled")
        unit.entity_id = str(user.id)
        tokens = await _open_session(ctx, unit.session, user, MINI_PROGRAM)
        unit.session.add(
            LoginLog(
                username="",
                user_id=user.id,
                method="wechat",
                success=True,
                reason="ok",
                ip=ctx.ip,
                user_agent=ctx.user_agent[:255],
            )
        )
    return tokens


async def _current_user(session: AsyncSession, ctx: Context) -> User:
    user = await session.get(User, ctx.principal.user_id)
    if user is None:
        raise unauthenticated()
    return user


async def change_password(ctx: Context, *, old_password: str, new_password: str) -> User:
    # Guessing the current password here counts like failed logins, and meets the same lockout.
    name = ctx.principal.username or f"user-{ctx.principal.user_id}"
    wait = await _locked_for(ctx, name)
    if wait:
        raise AppError(
            ErrorCode.RATE_LIMITED, f"Too many wrong passwords; try again in {wait} seconds", retryAfter=wait
        )
    async with ctx.db.session() as session:
        current = await _current_user(session, ctx)
    if not await verify_password_off_loop(current.password_hash, old_password):
        await _log_attempt(ctx, username=name, user_id=current.id, success=False, reason="bad_old_password")
        raise bad_input("The current password is wrong", "oldPassword")
    async with write_unit(ctx, operation="changePassword", action="update", entity_type="User") as unit:
        user = await _current_user(unit.session, ctx)
        unit.entity_id = str(user.id)
        check_password_policy(new_password, username=user.username, min_length=ctx.settings.password_min_length)
        if await verify_password_off_loop(user.password_hash, new_password):
            raise bad_input("The new password must differ from the current one", "newPassword")
        user.password_hash = await hash_password_off_loop(new_password)
        user.must_change_password = False
        user.updated_at = utcnow()
        unit.session.add(user)
        # Every other session of this account ends: whoever knew the old password is out.
        await revoke_sessions(unit.session, user_id=user.id, reason="password_changed", keep=ctx.principal.session_id)  # type: ignore[arg-type]
    return user


@dataclass
class ProfileInput:
    display_name: str
    phone: str | None = None
    console_username: str | None = None
    console_password: str | None = None


async def complete_profile(ctx: Context, data: ProfileInput) -> User:
    from resolvers.user import check_phone

    display_name = data.display_name.strip()
    if not display_name or len(display_name) > 100:
        raise bad_input("Name must be 1 to 100 characters", "displayName")
    async with write_unit(
        ctx, operation="completeProfile", action="update", entity_type="User", conflict_message="That username is taken"
    ) as unit:
        user = await _current_user(unit.session, ctx)
        unit.entity_id = str(user.id)
        user.display_name = display_name
        if data.phone is not None:
            user.phone = check_phone(data.phone)
        if data.console_username is not None:
            if user.username is not None:
                raise bad_input("This account already has a console username", "consoleUsername")
            from resolvers.user import check_username

            username = check_username(data.console_username)
            check_password_policy(
                data.console_password or "", username=username, min_length=ctx.settings.password_min_length
            )
            user.username = username
            user.password_hash = await hash_password_off_loop(data.console_password or "")
            user.status = UserStatus.PENDING.value
            unit.detail["consoleAccountRequested"] = True
        user.updated_at = utcnow()
        unit.session.add(user)
    return user


@dataclass
class TotpEnrollment:
    secret: str
    uri: str


async def enroll_totp(ctx: Context) -> TotpEnrollment:
    async with write_unit(ctx, operation="enrollTotp", action="update", entity_type="User") as unit:
        user = await _current_user(unit.session, ctx)
        unit.entity_id = str(user.id)
        if user.totp_enabled:
            raise AppError(ErrorCode.CONFLICT, "Two-factor login is already on; turn it off first")
        user.totp_secret = pyotp.random_base32()
        unit.session.add(user)
    name = user.username or f"user-{user.id}"
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=name, issuer_name=ctx.settings.totp_issuer)
    return TotpEnrollment(secret=user.totp_secret, uri=uri)


async def confirm_totp(ctx: Context, *, code: str) -> User:
    async with write_unit(ctx, operation="confirmTotp", action="update", entity_type="User") as unit:
        user = await _current_user(unit.session, ctx)
        unit.entity_id = str(user.id)
        if not user.totp_secret or user.totp_enabled:
            raise bad_input("Start enrolment first", "code")
        step = _totp_step(user.totp_secret, code)
        if step is None:
            raise bad_input("Invalid one-time code", "code")
        user.totp_enabled = True
        user.totp_last_step = step
        unit.session.add(user)
    return user


async def disable_totp(ctx: Context, *, password: str) -> User:
    async with write_unit(ctx, operation="disableTotp", action="update", entity_type="User") as unit:
        user = await _current_user(unit.session, ctx)
        unit.entity_id = str(user.id)
        if not await verify_password_off_loop(user.password_hash, password):
            raise bad_input("The password is wrong", "password")
        user.totp_enabled = False
        user.totp_secret = None
        unit.session.add(user)
    return user
