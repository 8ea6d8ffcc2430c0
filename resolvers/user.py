"""Accounts administered by admins and department admins.

Which users a caller reaches is the User reach in policies/tables.py: the users of the caller's departments
(and, to read, oneself); out of reach is NOT_FOUND. Administering a user also needs every role they hold to be
one the caller may assign (resolvers/role.py), and a user created or moved must land within reach.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import exists, or_

from core.errors import bad_input, forbidden
from core.security import check_password_policy, hash_password_off_loop
from core.timeutil import utcnow
from models.organisation import Position
from models.role import Role, UserRole
from models.user import User, UserStatus
from resolvers.audit.unit import WriteUnit
from resolvers.auth import revoke_sessions
from resolvers.auth.profile import check_display_name, check_phone, check_username
from resolvers.data.context import Context
from resolvers.data.matching import matching
from resolvers.data.pagination import Page
from resolvers.data.principal import SESSIONS_CHANNEL
from resolvers.organisation import open_department
from resolvers.role import give_roles, replace_roles, roles_of, roles_within_reach

__all__ = ["check_display_name", "check_phone", "check_username"]  # the account rules, for other domains too

# Administering users: the users of one's departments (policies/tables.py).
MANAGE = "manage"


# ---- who may manage whom -----------------------------------------------------------------------


async def load_user_for_write(ctx: Context, unit: WriteUnit, user_id: int) -> User:
    """A user the caller administers (else NOT_FOUND) holding no role beyond what the caller may assign."""
    user: User = await unit.get(User, user_id, what="User", purpose=MANAGE)
    if user.id != ctx.principal.user_id:
        await roles_within_reach(ctx, unit, await roles_of(ctx, unit, user_id))
    return user


async def _still_within_reach(unit: WriteUnit, user: User) -> None:
    """A user created or moved must be one the caller administers: nobody places anyone (themselves included)
    in a department beyond their reach."""
    await unit.flush()
    if await unit.find(User, user.id, purpose=MANAGE) is None:
        raise forbidden("That department is outside your scope")


# ---- reads -------------------------------------------------------------------------------------


@dataclass
class UserFilter:
    status: str | None = None
    role_key: str | None = None
    department_id: int | None = None
    search: str | None = None


async def list_users(ctx: Context, *, first: int | None, after: str | None, filters: UserFilter) -> Page[User]:
    statement = await ctx.data.select(User)
    if filters.status:
        statement = statement.where(User.status == filters.status)
    if filters.department_id is not None:
        statement = statement.where(User.department_id == filters.department_id)
    if filters.role_key:
        statement = statement.where(
            exists().where(UserRole.user_id == User.id, Role.id == UserRole.role_id, Role.key == filters.role_key)
        )
    if filters.search and filters.search.strip():
        term = filters.search.strip()
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions = [
            User.username.like(like, escape="\\"),  # type: ignore[union-attr]
            User.display_name.like(like, escape="\\"),  # type: ignore[attr-defined]
        ]
        same_phone = await matching(ctx, "User", "phone", User.phone, term, term, operation="users")
        if same_phone is not None:
            conditions.append(same_phone)
        statement = statement.where(or_(*conditions))
    return await ctx.data.page(statement, keys=[User.id], first=first, after=after)


async def get_user(ctx: Context, user_id: int) -> User | None:
    found: User | None = await ctx.data.first(await ctx.data.select(User, then=lambda s: s.where(User.id == user_id)))
    return found


# ---- writes ------------------------------------------------------------------------------------


@dataclass
class NewUser:
    username: str
    display_name: str
    password: str
    phone: str | None = None
    department_id: int | None = None
    position_id: int | None = None
    role_keys: Sequence[str] = ()
    must_change_password: bool = True


async def _check_references(unit: WriteUnit, department_id: int | None, position_id: int | None) -> None:
    if department_id is not None:
        await open_department(unit, department_id)  # known, and taking new members
    if position_id is not None and await unit.find(Position, position_id) is None:
        raise bad_input("Unknown position", "positionId")


async def _username_taken(ctx: Context, unit: WriteUnit, username: str) -> bool:
    # Usernames are unique over every account, not only those in reach (a taken one is bad input for anyone).
    statement = await ctx.data.select(User, User.id, purpose="name", then=lambda s: s.where(User.username == username))
    return bool(await unit.scalars(statement))


async def create_user(ctx: Context, data: NewUser) -> User:
    username = check_username(data.username)
    display_name = check_display_name(data.display_name)
    phone = check_phone(data.phone) if data.phone is not None else None
    check_password_policy(data.password, username=username, min_length=ctx.settings.password_min_length)
    async with ctx.data.write(
        operation="createUser", action="create", entity_type="User", conflict_message="That username is taken"
    ) as unit:
        await _check_references(unit, data.department_id, data.position_id)
        roles = await roles_within_reach(ctx, unit, list(dict.fromkeys(data.role_keys)))
        if await _username_taken(ctx, unit, username):
            raise bad_input("That username is taken", "username")
        user = User(
            username=username,
            display_name=display_name,
            phone=phone,
            department_id=data.department_id,
            position_id=data.position_id,
            password_hash=await hash_password_off_loop(data.password),
            must_change_password=data.must_change_password,
        )
        unit.add(user)
        await _still_within_reach(unit, user)
        give_roles(unit, user.id, roles)  # type: ignore[arg-type]
        unit.entity_id = str(user.id)
        unit.detail = {"roles": [role.key for role in roles], "departmentId": data.department_id}
    return user


@dataclass
class UserChanges:
    display_name: str | None = None
    phone: str | None = None
    department_id: int | None = None
    position_id: int | None = None
    set_department: bool = False
    set_position: bool = False


async def update_user(ctx: Context, user_id: int, changes: UserChanges) -> User:
    async with ctx.data.write(operation="updateUser", action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit, user_id)
        unit.entity_id = str(user.id)
        changed: list[str] = []
        if changes.display_name is not None:
            user.display_name = check_display_name(changes.display_name)
            changed.append("displayName")
        if changes.phone is not None:
            user.phone = check_phone(changes.phone)
            changed.append("phone")
        if changes.set_department and changes.department_id != user.department_id:
            await _check_references(unit, changes.department_id, None)
            user.department_id = changes.department_id
            changed.append("departmentId")
        if changes.set_position:
            await _check_references(unit, None, changes.position_id)
            user.position_id = changes.position_id
            changed.append("positionId")
        user.updated_at = utcnow()
        unit.add(user)
        if changes.set_department:
            await _still_within_reach(unit, user)
            unit.on_commit(_reach_changed(ctx))  # their open websockets re-check scope at once
        unit.detail = {"changed": changed}
    return user


def _reach_changed(ctx: Context) -> Callable[[], Awaitable[None]]:
    async def notice() -> None:
        await ctx.services.notifier.publish(SESSIONS_CHANNEL)

    return notice


async def set_status(ctx: Context, user_id: int, status: UserStatus) -> User:
    operation = "disableUser" if status is UserStatus.DISABLED else "enableUser"
    async with ctx.data.write(operation=operation, action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit, user_id)
        if user.id == ctx.principal.user_id:
            raise forbidden("You cannot change the status of your own account")
        unit.entity_id = str(user.id)
        user.status = status.value
        user.updated_at = utcnow()
        unit.add(user)
        if status is UserStatus.DISABLED:
            await revoke_sessions(ctx, unit, user_id=user_id, reason="account_disabled")
    return user


async def reset_password(ctx: Context, user_id: int, new_password: str | None) -> tuple[User, str]:
    async with ctx.data.write(operation="resetPassword", action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit, user_id)
        if user.username is None:
            raise bad_input("This account has no console login", "userId")
        password = new_password or _temporary_password()
        check_password_policy(password, username=user.username, min_length=ctx.settings.password_min_length)
        unit.entity_id = str(user.id)
        user.password_hash = await hash_password_off_loop(password)
        user.must_change_password = True
        user.updated_at = utcnow()
        unit.add(user)
        await revoke_sessions(ctx, unit, user_id=user_id, reason="password_reset")
    return user, password


def _temporary_password() -> str:
    return "Tmp-" + secrets.token_urlsafe(9) + "7a"


async def assign_roles(ctx: Context, user_id: int, role_keys: Sequence[str]) -> User:
    keys = list(dict.fromkeys(role_keys))
    async with ctx.data.write(operation="assignRoles", action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit, user_id)
        unit.entity_id = str(user.id)
        before = await roles_of(ctx, unit, user_id)
        roles = await roles_within_reach(ctx, unit, keys)
        await replace_roles(ctx, unit, user_id, roles)
        if user.status == UserStatus.PENDING.value and roles:
            user.status = UserStatus.ACTIVE.value
        user.updated_at = utcnow()
        unit.add(user)
        unit.detail = {"before": sorted(before), "after": sorted(keys)}
    return user
