"""Roles, their permission grants, and who holds them. A change reaches every instance's schemas at once.

The policy's own tables (`casbin_rule`, and a user's role links) have no caller's reach: the schema decides
who may change permissions at all (grantPermission, createRole), and `policies/roles.py`'s `may_assign` which
roles a caller may hand out. Their rows are reached here as system work, after those decisions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import bad_input, forbidden, not_found
from models.policy import CasbinRule
from models.role import DataScope, Role, UserRole
from policies.capabilities import is_capability
from policies.roles import may_assign
from policies.store import ACTIONS, ANONYMOUS, AUTHENTICATED, PolicyLine, line_conditions, line_problem, rule_row
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

POLICY_CHANNEL = "policy"
_ROLE_KEY = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_POLICY_TABLES = "the policy's own tables: changed once the schema and may_assign have let the caller"


async def list_roles(ctx: Context) -> list[Role]:
    return await ctx.data.objects(await ctx.data.select(Role, then=lambda s: s.order_by(Role.id)))


async def _role(ctx: Context, unit: WriteUnit, key: str) -> Role:
    role: Role | None = await unit.first(await ctx.data.select(Role, then=lambda s: s.where(Role.key == key)))
    if role is None:
        raise not_found("Role")
    return role


# ---- who holds which role ------------------------------------------------------------------------


async def roles_within_reach(ctx: Context, unit: WriteUnit, role_keys: Sequence[str]) -> list[Role]:
    """The roles, if the caller may assign each of them (may_assign); else FORBIDDEN. Unknown keys are bad input."""
    keys = list(role_keys)
    roles: list[Role] = await unit.objects(await ctx.data.select(Role, then=lambda s: s.where(Role.key.in_(keys))))  # type: ignore[attr-defined]
    found = {role.key for role in roles}
    missing = [key for key in role_keys if key not in found]
    if missing:
        raise bad_input(f"Unknown role: {', '.join(missing)}", "roleKeys")
    access = await ctx.access()
    for role in roles:
        if not may_assign(access, ctx.services.policy, role.key, DataScope(role.data_scope)):
            raise forbidden(f"You may not assign the role {role.key}")
    return roles


async def roles_of(ctx: Context, unit: WriteUnit, user_id: int) -> list[str]:
    """The keys of the roles a user (in the caller's reach) holds."""
    statement = await ctx.data.select(
        UserRole,
        Role.key,
        then=lambda s: (
            s.select_from(UserRole)
            .join(Role, Role.id == UserRole.role_id)  # type: ignore[arg-type]
            .where(UserRole.user_id == user_id)
        ),
    )
    return list(await unit.scalars(statement))


def give_roles(unit: WriteUnit, user_id: int, roles: Sequence[Role]) -> None:
    """Link a user to roles that `roles_within_reach` allowed."""
    unit.add_all([UserRole(user_id=user_id, role_id=role.id) for role in roles])  # type: ignore[arg-type]


async def replace_roles(ctx: Context, unit: WriteUnit, user_id: int, roles: Sequence[Role]) -> None:
    """The user's roles become exactly `roles` (allowed by `roles_within_reach`, the user loaded within reach)."""
    system = ctx.data.unscoped(_POLICY_TABLES)
    await unit.execute(system.delete(UserRole).where(UserRole.user_id == user_id))  # type: ignore[arg-type]
    give_roles(unit, user_id, roles)


# ---- permissions ---------------------------------------------------------------------------------


def _check_permission(ctx: Context, coordinate: str, action: str) -> None:
    if action not in ACTIONS:
        raise bad_input(f"Action must be one of {', '.join(ACTIONS)}", "action")
    problem = line_problem(PolicyLine("p", ("", coordinate, action)), set(ctx.services.coordinates))
    if problem is not None:
        raise bad_input(problem, "object" if "action" not in problem else "action")
    if not is_capability(coordinate) and coordinate.startswith("Mutation.") != (action == "execute"):
        raise bad_input("Mutations take 'execute'; other fields take 'read' or 'read_masked'", "action")


async def _add_line(ctx: Context, unit: WriteUnit, line: PolicyLine) -> bool:
    """Store a policy line unless present; True when it was new."""
    system = ctx.data.unscoped(_POLICY_TABLES)
    if await unit.first(system.select(CasbinRule).where(*line_conditions(line))) is not None:
        return False
    unit.add(rule_row(line))
    return True


async def _remove_line(ctx: Context, unit: WriteUnit, line: PolicyLine) -> bool:
    system = ctx.data.unscoped(_POLICY_TABLES)
    return bool(await unit.execute(system.delete(CasbinRule).where(*line_conditions(line))))


async def _policy_changed(ctx: Context) -> None:
    await ctx.services.notifier.publish(POLICY_CHANNEL)


async def grant_permission(ctx: Context, *, role_key: str, coordinate: str, action: str) -> Role:
    _check_permission(ctx, coordinate, action)
    async with ctx.data.write(operation="grantPermission", action="update", entity_type="Role") as unit:
        role = await _role(ctx, unit, role_key)
        unit.entity_id = str(role.id)
        added = await _add_line(ctx, unit, PolicyLine("p", (role_key, coordinate, action)))
        unit.detail = {"object": coordinate, "action": action, "changed": added}
    await _policy_changed(ctx)
    return role


async def revoke_permission(ctx: Context, *, role_key: str, coordinate: str, action: str) -> Role:
    _check_permission(ctx, coordinate, action)
    async with ctx.data.write(operation="revokePermission", action="update", entity_type="Role") as unit:
        role = await _role(ctx, unit, role_key)
        unit.entity_id = str(role.id)
        removed = await _remove_line(ctx, unit, PolicyLine("p", (role_key, coordinate, action)))
        unit.detail = {"object": coordinate, "action": action, "changed": removed}
    await _policy_changed(ctx)
    return role


async def create_role(
    ctx: Context, *, key: str, name: str, data_scope: DataScope, inherits: Sequence[str], description: str
) -> Role:
    key = key.strip()
    inherits = list(dict.fromkeys(inherits))  # each inheritance once
    if not _ROLE_KEY.match(key) or key in (ANONYMOUS, AUTHENTICATED):
        raise bad_input("Role key: 2-64 lower-case letters, digits or '_', starting with a letter", "key")
    if not name.strip() or len(name.strip()) > 100:
        raise bad_input("Name must be 1 to 100 characters", "name")
    async with ctx.data.write(
        operation="createRole", action="create", entity_type="Role", conflict_message="That role key exists"
    ) as unit:
        for parent in inherits:
            await _role(ctx, unit, parent)
        role = Role(key=key, name=name.strip(), data_scope=data_scope.value, description=description.strip()[:255])
        unit.add(role)
        await unit.flush()
        await _add_line(ctx, unit, PolicyLine("g", (key, AUTHENTICATED)))
        for parent in inherits:
            await _add_line(ctx, unit, PolicyLine("g", (key, parent)))
        unit.entity_id = str(role.id)
        unit.detail = {"inherits": list(inherits), "dataScope": data_scope.value}
    await _policy_changed(ctx)
    return role
