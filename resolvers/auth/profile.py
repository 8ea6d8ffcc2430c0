"""One's own account: who one is (`me`), the profile a mini-program user completes, and the rules for the
names and numbers an account holds (also applied by the administration of users, resolvers/user.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import bad_input, forbidden, unauthenticated
from core.security import check_password_policy, hash_password_off_loop, normalise_username
from core.timeutil import utcnow
from core.validation import poses_as_staff
from models.user import User, UserStatus
from policies.roles import may_request_console_account
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,30}$")


def check_username(username: str) -> str:
    name = normalise_username(username)
    if not _USERNAME.match(name):
        raise bad_input("Username: 3-64 letters, digits, '.', '_' or '-'", "username")
    return name


def check_phone(phone: str) -> str | None:
    phone = phone.strip()
    if not phone:
        return None
    if not _PHONE.match(phone):
        raise bad_input("Invalid phone number", "phone")
    return phone


def check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise bad_input("Name must be 1 to 100 characters", "displayName")
    return name


async def current_user(ctx: Context) -> User:
    """The caller's own account (within everyone's reach: oneself)."""
    user_id = ctx.principal.user_id
    if user_id is None:
        raise unauthenticated()
    found = await ctx.data.first(await ctx.data.select(User, then=lambda s: s.where(User.id == user_id)))
    if found is None:
        raise unauthenticated()
    return found  # type: ignore[no-any-return]


async def own_account_for_write(ctx: Context, unit: WriteUnit) -> User:
    """The caller's own account, loaded in the write unit that changes it (the unit's entity)."""
    if ctx.principal.user_id is None:
        raise unauthenticated()
    user: User = await unit.get(User, ctx.principal.user_id)
    unit.entity_id = str(user.id)
    return user


@dataclass
class ProfileInput:
    display_name: str
    phone: str | None = None
    console_username: str | None = None
    console_password: str | None = None


def check_chosen_name(name: str) -> str:
    """A name the account holder picks for themselves: no staff title in it (titles are shown from the role)."""
    name = check_display_name(name)
    if poses_as_staff(name):
        raise bad_input(
            "A name you choose may not carry a title such as 主任, 医生 or Dr: titles come from roles",
            "displayName",
        )
    return name


async def complete_profile(ctx: Context, data: ProfileInput) -> User:
    display_name = check_chosen_name(data.display_name)
    async with ctx.data.write(
        operation="completeProfile", action="update", entity_type="User", conflict_message="That username is taken"
    ) as unit:
        user = await own_account_for_write(ctx, unit)
        user.display_name = display_name
        if data.phone is not None:
            user.phone = check_phone(data.phone)
        if data.console_username is not None:
            if not may_request_console_account(ctx.principal.role_keys):
                raise forbidden("A patient's account is the mini-program's: it gets no console credentials")
            if user.username is not None:
                raise bad_input("This account already has a console username", "consoleUsername")
            username = check_username(data.console_username)
            check_password_policy(
                data.console_password or "", username=username, min_length=ctx.settings.password_min_length
            )
            user.username = username
            user.password_hash = await hash_password_off_loop(data.console_password or "")
            user.status = UserStatus.PENDING.value
            unit.detail["consoleAccountRequested"] = True
        user.updated_at = utcnow()
        unit.add(user)
    return user
