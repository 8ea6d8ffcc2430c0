"""Roles, their permission grants, and who holds them. A change reaches every instance's schemas at once.

The policy's own tables (`casbin_rule`, and a user's role links) have no caller's reach: the schema decides
who may change permissions at all (grantPermission, createRole), and `policies/roles.py`'s `may_assign` which
roles a caller may hand out. Their rows are reached here as system work, after those decisions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func

from core.errors import bad_input, conflict, forbidden, not_found
from core.timeutil import utcnow
from models.policy import CasbinRule
from models.role import DataScope, Role, UserRole
from policies.capabilities import Capability, is_capability
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


# ---- a role's life cycle ---------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise bad_input("Name must be 1 to 100 characters", "name")
    return name


def _parents(ctx: Context, key: str) -> list[str]:
    """The roles a role inherits by its own lines (the pseudo-role every role inherits left out)."""
    rules = ctx.services.policy.enforcer.get_filtered_grouping_policy(0, key)
    return [rule[1] for rule in rules if rule[1] != AUTHENTICATED]


async def _check_parents(ctx: Context, unit: WriteUnit, key: str, parents: Sequence[str]) -> None:
    """Every parent a role, and none of them the role itself or below it (no cycle)."""
    if parents:
        found = set(
            await unit.scalars(
                await ctx.data.select(Role, Role.key, then=lambda s: s.where(Role.key.in_(list(parents))))
            )
        )  # type: ignore[attr-defined]
        missing = [parent for parent in parents if parent not in found]
        if missing:
            raise bad_input(f"Unknown role: {', '.join(missing)}", "inherits")
    policy = ctx.services.policy
    for parent in parents:
        if parent == key or key in policy.inherited_roles(parent):
            raise bad_input(f"{key} cannot inherit {parent}: {parent} already inherits {key} (a cycle)", "inherits")


async def update_role(
    ctx: Context,
    *,
    key: str,
    name: str | None,
    description: str | None,
    data_scope: DataScope | None,
    inherits: Sequence[str] | None,
) -> Role:
    """Rename a role, change its data scope or the roles it inherits (no cycles; a built-in role's place in the
    hierarchy is the platform's and stays)."""
    new_name = _check_name(name) if name is not None else None
    parents = list(dict.fromkeys(inherits)) if inherits is not None else None
    async with ctx.data.write(operation="updateRole", action="update", entity_type="Role") as unit:
        role = await _role(ctx, unit, key)
        unit.entity_id = str(role.id)
        changes: dict[str, object] = {}
        if new_name is not None and new_name != role.name:
            changes["name"] = {"from": role.name, "to": new_name}
            role.name = new_name
        if description is not None and description.strip()[:255] != role.description:
            role.description = description.strip()[:255]
            changes["description"] = True
        if data_scope is not None and data_scope.value != role.data_scope:
            changes["dataScope"] = {"from": role.data_scope, "to": data_scope.value}
            role.data_scope = data_scope.value
        if parents is not None and set(parents) != set(_parents(ctx, key)):
            if role.is_builtin:
                raise forbidden("A built-in role's place in the role hierarchy cannot be changed")
            await _check_parents(ctx, unit, key, parents)
            before = _parents(ctx, key)
            for parent in before:
                if parent not in parents:
                    await _remove_line(ctx, unit, PolicyLine("g", (key, parent)))
            for parent in parents:
                await _add_line(ctx, unit, PolicyLine("g", (key, parent)))
            changes["inherits"] = {"from": before, "to": parents}
        role.updated_at = utcnow()
        unit.add(role)
        unit.detail = changes
    await _policy_changed(ctx)  # a role's data scope is read with the session on every request
    return role


async def delete_role(ctx: Context, *, key: str) -> Role:
    """Delete a custom role nobody holds and no role inherits, with its policy lines. Built-in roles stay."""
    system = ctx.data.unscoped(_POLICY_TABLES)
    async with ctx.data.write(operation="deleteRole", action="delete", entity_type="Role") as unit:
        role = await _role(ctx, unit, key)
        unit.entity_id = str(role.id)
        if role.is_builtin:
            raise forbidden("Built-in roles cannot be deleted")
        holders = await unit.scalars(
            system.select(func.count()).select_from(UserRole).where(UserRole.role_id == role.id)
        )
        if holders and holders[0]:
            raise conflict(f"{holders[0]} user(s) hold the role {key}: take it from them first")
        heirs = await unit.scalars(system.select(CasbinRule.v0).where(CasbinRule.ptype == "g", CasbinRule.v1 == key))
        if heirs:
            raise conflict(f"The roles {', '.join(sorted(heirs))} inherit {key}: change them first")
        lines = await unit.execute(
            system.delete(CasbinRule).where(CasbinRule.ptype.in_(["p", "g"]), CasbinRule.v0 == key)  # type: ignore[attr-defined]
        )
        unit.detail = {"key": key, "name": role.name, "policyLines": lines}
        await unit.delete(role)
    await _policy_changed(ctx)
    return role


# ---- what a role may do ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldPermission:
    object: str
    action: str
    origin: str  # the role whose own line grants it

    def inherited_by(self, key: str) -> bool:
        return self.origin != key


async def role_permissions(ctx: Context, key: str) -> list[HeldPermission]:
    """A role's own permissions, then those it inherits, each once, with the nearest role that grants it.
    Capabilities that do not pass down the hierarchy (policies/capabilities.py) are not inherited."""
    found = await ctx.data.first(await ctx.data.select(Role, then=lambda s: s.where(Role.key == key)))
    if found is None:
        raise not_found("Role")
    policy = ctx.services.policy
    order: list[str] = [key]
    queue = [key]
    while queue:  # breadth first: the nearest origin wins
        for parent in (rule[1] for rule in policy.enforcer.get_filtered_grouping_policy(0, queue.pop(0))):
            if parent not in order:
                order.append(parent)
                queue.append(parent)
    held: dict[tuple[str, str], HeldPermission] = {}
    for origin in order:
        for obj, action in sorted(policy.direct_permissions(origin)):
            if origin != key and is_capability(obj) and not _inherited_capability(obj):
                continue
            held.setdefault((obj, action), HeldPermission(obj, action, origin))
    return list(held.values())


def _inherited_capability(coordinate: str) -> bool:
    return any(capability.coordinate == coordinate and capability.inherited for capability in Capability)
