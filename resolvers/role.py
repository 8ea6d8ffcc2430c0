"""Roles and their permission grants. A change reaches every instance's schemas at once."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select

from core.errors import bad_input, not_found
from models.role import DataScope, Role
from policies.capabilities import is_capability
from policies.store import ACTIONS, ANONYMOUS, AUTHENTICATED, PolicyLine, add_rule, line_problem, remove_rule
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context

POLICY_CHANNEL = "policy"
_ROLE_KEY = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


async def list_roles(ctx: Context) -> list[Role]:
    async with ctx.db.session() as session:
        return list((await session.execute(select(Role).order_by(Role.id))).scalars().all())  # type: ignore[arg-type]


async def _role(ctx: Context, session: object, key: str) -> Role:
    role = (await session.execute(select(Role).where(Role.key == key))).scalar_one_or_none()  # type: ignore[attr-defined]
    if role is None:
        raise not_found("Role")
    return role


def _check_permission(ctx: Context, coordinate: str, action: str) -> None:
    if action not in ACTIONS:
        raise bad_input(f"Action must be one of {', '.join(ACTIONS)}", "action")
    problem = line_problem(PolicyLine("p", ("", coordinate, action)), set(ctx.services.coordinates))
    if problem is not None:
        raise bad_input(problem, "object" if "action" not in problem else "action")
    if not is_capability(coordinate) and coordinate.startswith("Mutation.") != (action == "execute"):
        raise bad_input("Mutations take 'execute'; other fields take 'read' or 'read_masked'", "action")


async def _policy_changed(ctx: Context) -> None:
    await ctx.services.notifier.publish(POLICY_CHANNEL)


async def grant_permission(ctx: Context, *, role_key: str, coordinate: str, action: str) -> Role:
    _check_permission(ctx, coordinate, action)
    async with write_unit(ctx, operation="grantPermission", action="update", entity_type="Role") as unit:
        role = await _role(ctx, unit.session, role_key)
        unit.entity_id = str(role.id)
        added = await add_rule(unit.session, PolicyLine("p", (role_key, coordinate, action)))
        unit.detail = {"object": coordinate, "action": action, "changed": added}
    await _policy_changed(ctx)
    return role


async def revoke_permission(ctx: Context, *, role_key: str, coordinate: str, action: str) -> Role:
    _check_permission(ctx, coordinate, action)
    async with write_unit(ctx, operation="revokePermission", action="update", entity_type="Role") as unit:
        role = await _role(ctx, unit.session, role_key)
        unit.entity_id = str(role.id)
        removed = await remove_rule(unit.session, PolicyLine("p", (role_key, coordinate, action)))
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
    async with write_unit(
        ctx, operation="createRole", action="create", entity_type="Role", conflict_message="That role key exists"
    ) as unit:
        session = unit.session
        for parent in inherits:
            await _role(ctx, session, parent)
        role = Role(key=key, name=name.strip(), data_scope=data_scope.value, description=description.strip()[:255])
        session.add(role)
        await session.flush()
        await add_rule(session, PolicyLine("g", (key, AUTHENTICATED)))
        for parent in inherits:
            await add_rule(session, PolicyLine("g", (key, parent)))
        unit.entity_id = str(role.id)
        unit.detail = {"inherits": list(inherits), "dataScope": data_scope.value}
    await _policy_changed(ctx)
    return role
