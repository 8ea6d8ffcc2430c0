"""Two-factor login (TOTP): enrolment, confirmation, turning it off, and accepting each code once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp

from core.errors import AppError, ErrorCode, bad_input
from core.security import verify_password_off_loop
from core.timeutil import utcnow
from models.user import User
from resolvers.auth.profile import own_account_for_write
from resolvers.data.context import Context


def totp_step(secret: str, code: str) -> int | None:
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


@dataclass
class TotpEnrollment:
    secret: str
    uri: str


async def enroll_totp(ctx: Context) -> TotpEnrollment:
    async with ctx.data.write(operation="enrollTotp", action="update", entity_type="User") as unit:
        user = await own_account_for_write(ctx, unit)
        if user.totp_enabled:
            raise AppError(ErrorCode.CONFLICT, "Two-factor login is already on; turn it off first")
        user.totp_secret = pyotp.random_base32()
        unit.add(user)
    name = user.username or f"user-{user.id}"
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=name, issuer_name=ctx.settings.totp_issuer)
    return TotpEnrollment(secret=user.totp_secret, uri=uri)


async def confirm_totp(ctx: Context, *, code: str) -> User:
    async with ctx.data.write(operation="confirmTotp", action="update", entity_type="User") as unit:
        user = await own_account_for_write(ctx, unit)
        if not user.totp_secret or user.totp_enabled:
            raise bad_input("Start enrolment first", "code")
        step = totp_step(user.totp_secret, code)
        if step is None:
            raise bad_input("Invalid one-time code", "code")
        user.totp_enabled = True
        user.totp_last_step = step
        unit.add(user)
    return user


async def disable_totp(ctx: Context, *, password: str) -> User:
    async with ctx.data.write(operation="disableTotp", action="update", entity_type="User") as unit:
        user = await own_account_for_write(ctx, unit)
        if not await verify_password_off_loop(user.password_hash, password):
            raise bad_input("The password is wrong", "password")
        user.totp_enabled = False
        user.totp_secret = None
        unit.add(user)
    return user
