"""Logging in with a password (and a one-time code once enrolled), the lockout, and changing one's password.

Logging in is system work: the caller is nobody yet, the account is found by its username. After
LOGIN_MAX_FAILURES failures within the window from one address, that address is locked out of that account;
every attempt goes to the login log (resolvers/audit/logins.py).
"""

from __future__ import annotations

from sqlalchemy import or_

from core.errors import AppError, ErrorCode, bad_input, unauthenticated
from core.security import (
    check_password_policy,
    hash_password_off_loop,
    needs_rehash,
    normalise_username,
    verify_password_off_loop,
)
from core.timeutil import utcnow
from models.user import User, UserStatus
from resolvers.audit import logins
from resolvers.audit.unit import WriteUnit
from resolvers.auth.profile import current_user, own_account_for_write
from resolvers.auth.sessions import CONSOLE, GRAPHIQL, Tokens, open_session, revoke_sessions
from resolvers.auth.totp import totp_step
from resolvers.data.context import Context
from resolvers.data.repository import Unscoped_


class _CodeUsed(Exception):
    """The one-time code's step was claimed by another login first: nothing of this login is written (the
    refusal raised after the unit is recorded like any other failed login)."""


async def login(ctx: Context, *, username: str, password: str, totp: str | None) -> Tokens:
    name = normalise_username(username)[:128]
    # Counted before the password is checked, in one step with reading the lockout (resolvers/audit/logins.py):
    # parallel guesses cannot all be checked against a lockout none of them has been counted in yet.
    attempt = await logins.claim_attempt(ctx, username=name)
    if attempt.wait:
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"Too many failed logins from this address; try again in {attempt.wait} seconds",
            retryAfter=attempt.wait,
        )
    system = ctx.data.unscoped("logging in: the caller is nobody yet, the account is found by its username")
    user: User | None = await ctx.data.first(system.select(User).where(User.username == name))
    password_ok = await verify_password_off_loop(user.password_hash if user else None, password)
    if user is None or not password_ok:
        user_id = user.id if user else None
        await logins.settle(ctx, attempt, user_id=user_id, success=False, reason="bad_credentials")
        raise unauthenticated("Invalid username or password")
    if user.status == UserStatus.DISABLED.value:
        await logins.settle(ctx, attempt, user_id=user.id, success=False, reason="disabled")
        raise unauthenticated("This account is disabled")
    step: int | None = None
    if user.totp_enabled:
        if not totp:
            await logins.settle(ctx, attempt, user_id=user.id, success=False, reason="totp_missing")
            raise AppError(ErrorCode.UNAUTHENTICATED, "A one-time code is required", totpRequired=True)
        step = totp_step(user.totp_secret or "", totp)
        if step is None:
            raise await _code_refused(ctx, attempt, user.id)
    try:
        async with ctx.data.write(operation="login", action="login", entity_type="User") as unit:
            unit.entity_id = str(user.id)
            account: User = await unit.first(system.select(User).where(User.id == user.id))
            if step is not None and not await _claim_step(unit, system, account, step):
                raise _CodeUsed
            if account.password_hash and needs_rehash(account.password_hash):
                account.password_hash = await hash_password_off_loop(password)
                unit.add(account)
            tokens = await open_session(ctx, unit, account, GRAPHIQL if ctx.state.graphiql else CONSOLE)
            await logins.settle_in(unit, attempt, user_id=account.id)
    except _CodeUsed:
        raise await _code_refused(ctx, attempt, user.id) from None
    except Exception:
        # the unit rolled back its settling: the attempt must not stay "pending" (it would count as a failure)
        await logins.settle(ctx, attempt, user_id=user.id, success=False, reason="failed")
        raise
    return tokens


async def _code_refused(ctx: Context, attempt: logins.Attempt, user_id: int | None) -> AppError:
    await logins.settle(ctx, attempt, user_id=user_id, success=False, reason="totp_invalid")
    return AppError(ErrorCode.UNAUTHENTICATED, "Invalid or already used one-time code", totpRequired=True)


async def _claim_step(unit: WriteUnit, system: Unscoped_, account: User, step: int) -> bool:
    """Accept a code's time step once: it must be newer than the last one used (atomic, so never twice). In
    the unit that logs the user in: the claim commits with the login, or not at all."""
    claimed = await unit.execute(
        system.update(User)
        .where(
            User.id == account.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),  # type: ignore[union-attr,operator]
        )
        .values(totp_last_step=step)
    )
    return bool(claimed)


async def change_password(ctx: Context, *, old_password: str, new_password: str) -> User:
    # Guessing the current password here counts like failed logins, and meets the same lockout.
    name = ctx.principal.username or f"user-{ctx.principal.user_id}"
    attempt = await logins.claim_attempt(ctx, username=name)
    if attempt.wait:
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"Too many wrong passwords; try again in {attempt.wait} seconds",
            retryAfter=attempt.wait,
        )
    current = await current_user(ctx)
    if not await verify_password_off_loop(current.password_hash, old_password):
        await logins.settle(ctx, attempt, user_id=current.id, success=False, reason="bad_old_password")
        raise bad_input("The current password is wrong", "oldPassword")
    await logins.settle(ctx, attempt, user_id=current.id, success=True, reason="password_confirmed")
    async with ctx.data.write(operation="changePassword", action="update", entity_type="User") as unit:
        user = await own_account_for_write(ctx, unit)
        check_password_policy(new_password, username=user.username, min_length=ctx.settings.password_min_length)
        if await verify_password_off_loop(user.password_hash, new_password):
            raise bad_input("The new password must differ from the current one", "newPassword")
        user.password_hash = await hash_password_off_loop(new_password)
        user.must_change_password = False
        user.updated_at = utcnow()
        unit.add(user)
        # Every other session of this account ends: whoever knew the old password is out.
        await revoke_sessions(
            ctx,
            unit,
            user_id=user.id,  # type: ignore[arg-type]
            reason="password_changed",
            keep=ctx.principal.session_id,
        )
    return user
