"""Accounts administered by admins and department admins, within their data scope."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import bad_input, forbidden, not_found
from core.security import check_password_policy, hash_password_off_loop, normalise_username
from core.timeutil import utcnow
from models.organisation import Department, Position
from models.role import DataScope, Role, UserRole
from models.user import User, UserStatus
from policies.roles import may_assign
from policies.scope import department_filter
from resolvers.audit.unit import write_unit
from resolvers.auth import revoke_sessions
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.data.tree import scoped_department_ids

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


# ---- who may manage whom -----------------------------------------------------------------------


async def check_roles_within_reach(ctx: Context, session: AsyncSession, role_keys: Sequence[str]) -> list[Role]:
    """The roles, if the actor's own permissions and data scope cover each of them; else FORBIDDEN."""
    roles = list((await session.execute(select(Role).where(Role.key.in_(list(role_keys))))).scalars().all())  # type: ignore[attr-defined]
    found = {role.key for role in roles}
    missing = [key for key in role_keys if key not in found]
    if missing:
        raise bad_input(f"Unknown role: {', '.join(missing)}", "roleKeys")
    access = await ctx.access()
    for role in roles:
        if not may_assign(access, ctx.services.policy, role.key, DataScope(role.data_scope)):
            raise forbidden(f"You may not assign the role {role.key}")
    return roles


async def _roles_of(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.execute(
        select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)  # type: ignore[arg-type]
    )
    return list(rows.scalars().all())


async def _check_department_in_scope(ctx: Context, department_id: int | None) -> None:
    allowed = await scoped_department_ids(ctx)
    if allowed is not None and department_id not in allowed:
        raise forbidden("That department is outside your scope")


async def load_user_for_write(ctx: Context, session: AsyncSession, user_id: int) -> User:
    """A user the actor may change: in scope (else NOT_FOUND) and holding no role beyond the actor's."""
    user = await session.get(User, user_id)
    allowed = await scoped_department_ids(ctx)
    if user is None or (allowed is not None and user.department_id not in allowed):
        raise not_found("User")
    if user.id != ctx.principal.user_id:
        await check_roles_within_reach(ctx, session, await _roles_of(session, user_id))
    return user


# ---- reads -------------------------------------------------------------------------------------


@dataclass
class UserFilter:
    status: str | None = None
    role_key: str | None = None
    department_id: int | None = None
    search: str | None = None


async def list_users(ctx: Context, *, first: int | None, after: str | None, filters: UserFilter) -> Page[User]:
    statement = select(User).where(department_filter(User.department_id, await scoped_department_ids(ctx)))  # type: ignore[arg-type]
    if filters.status:
        statement = statement.where(User.status == filters.status)
    if filters.department_id is not None:
        statement = statement.where(User.department_id == filters.department_id)
    if filters.role_key:
        statement = statement.where(
            User.id.in_(  # type: ignore[union-attr]
                select(UserRole.user_id).join(Role, Role.id == UserRole.role_id).where(Role.key == filters.role_key)  # type: ignore[arg-type]
            )
        )
    if filters.search and filters.search.strip():
        term = filters.search.strip()
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                User.username.like(like, escape="\\"),  # type: ignore[union-attr]
                User.display_name.like(like, escape="\\"),  # type: ignore[attr-defined]
                User.phone == term,
            )
        )
    return await paginate(ctx.reads, statement, keys=[User.id], key_of=lambda user: [user.id], first=first, after=after)


async def get_user(ctx: Context, user_id: int) -> User | None:
    allowed = await scoped_department_ids(ctx)
    async with ctx.db.session() as session:
        user = await session.get(User, user_id)
    if user is None or (allowed is not None and user.department_id not in allowed):
        return None
    return user


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


async def _check_references(session: AsyncSession, department_id: int | None, position_id: int | None) -> None:
    if department_id is not None and await session.get(Department, department_id) is None:
        raise bad_input("Unknown department", "departmentId")
    if position_id is not None and await session.get(Position, position_id) is None:
        raise bad_input("Unknown position", "positionId")


async def create_user(ctx: Context, data: NewUser) -> User:
    username = check_username(data.username)
    display_name = check_display_name(data.display_name)
    phone = check_phone(data.phone) if data.phone is not None else None
    check_password_policy(data.password, username=username, min_length=ctx.settings.password_min_length)
    async with write_unit(
        ctx, operation="createUser", action="create", entity_type="User", conflict_message="That username is taken"
    ) as unit:
        session = unit.session
        await _check_department_in_scope(ctx, data.department_id)
        await _check_references(session, data.department_id, data.position_id)
        roles = await check_roles_within_reach(ctx, session, list(dict.fromkeys(data.role_keys)))
        if (await session.execute(select(User.id).where(User.username == username))).first():
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
        session.add(user)
        await session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role_id=role.id))  # type: ignore[arg-type]
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
    async with write_unit(ctx, operation="updateUser", action="update", entity_type="User") as unit:
        session = unit.session
        user = await load_user_for_write(ctx, session, user_id)
        unit.entity_id = str(user.id)
        changed: list[str] = []
        if changes.display_name is not None:
            user.display_name = check_display_name(changes.display_name)
            changed.append("displayName")
        if changes.phone is not None:
            user.phone = check_phone(changes.phone)
            changed.append("phone")
        if changes.set_department:
            await _check_department_in_scope(ctx, changes.department_id)
            await _check_references(session, changes.department_id, None)
            user.department_id = changes.department_id
            changed.append("departmentId")
        if changes.set_position:
            await _check_references(session, None, changes.position_id)
            user.position_id = changes.position_id
            changed.append("positionId")
        user.updated_at = utcnow()
        session.add(user)
        unit.detail = {"changed": changed}
    return user


async def set_status(ctx: Context, user_id: int, status: UserStatus) -> User:
    operation = "disableUser" if status is UserStatus.DISABLED else "enableUser"
    async with write_unit(ctx, operation=operation, action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit.session, user_id)
        if user.id == ctx.principal.user_id:
            raise forbidden("You cannot change the status of your own account")
        unit.entity_id = str(user.id)
        user.status = status.value
        user.updated_at = utcnow()
        unit.session.add(user)
        if status is UserStatus.DISABLED:
            await revoke_sessions(unit.session, user_id=user_id, reason="account_disabled")
    return user


async def reset_password(ctx: Context, user_id: int, new_password: str | None) -> tuple[User, str]:
    async with write_unit(ctx, operation="resetPassword", action="update", entity_type="User") as unit:
        user = await load_user_for_write(ctx, unit.session, user_id)
        if user.username is None:
            raise bad_input("This account has no console login", "userId")
        password = new_password or _temporary_password()
        check_password_policy(password, username=user.username, min_length=ctx.settings.password_min_length)
        unit.entity_id = str(user.id)
        user.password_hash = await hash_password_off_loop(password)
        user.must_change_password = True
        user.updated_at = utcnow()
        unit.session.add(user)
        await revoke_sessions(unit.session, user_id=user_id, reason="password_reset")
    return user, password


def _temporary_password() -> str:
    return "Tmp-" + secrets.token_urlsafe(9) + "7a"


async def assign_roles(ctx: Context, user_id: int, role_keys: Sequence[str]) -> User:
    keys = list(dict.fromkeys(role_keys))
    async with write_unit(ctx, operation="assignRoles", action="update", entity_type="User") as unit:
        session = unit.session
        user = await load_user_for_write(ctx, session, user_id)
        unit.entity_id = str(user.id)
        before = await _roles_of(session, user_id)
        roles = await check_roles_within_reach(ctx, session, keys)
        await session.execute(delete(UserRole).where(UserRole.user_id == user_id))  # type: ignore[arg-type]
        for role in roles:
            session.add(UserRole(user_id=user_id, role_id=role.id))  # type: ignore[arg-type]
        if user.status == UserStatus.PENDING.value and roles:
            user.status = UserStatus.ACTIVE.value
        user.updated_at = utcnow()
        session.add(user)
        unit.detail = {"before": sorted(before), "after": sorted(keys)}
    return user
