"""The principal's data scope, resolved once per request."""

from __future__ import annotations

from sqlalchemy import select

from models.organisation import Department
from policies.scope import department_ids_in_scope
from resolvers.context import Context

_TREE = select(Department.id, Department.parent_id)  # built once


async def department_parents(ctx: Context) -> dict[int, int | None]:
    if "department_parents" not in ctx.memo:
        async with ctx.connection() as connection:
            rows = (await connection.execute(_TREE)).all()
        ctx.memo["department_parents"] = {dep_id: parent for dep_id, parent in rows}
    parents: dict[int, int | None] = ctx.memo["department_parents"]
    return parents


async def scoped_department_ids(ctx: Context) -> set[int] | None:
    """Departments whose records this principal may reach; None means all of them."""
    if "scoped_departments" not in ctx.memo:
        principal = ctx.principal
        ctx.memo["scoped_departments"] = department_ids_in_scope(
            principal.data_scope, principal.department_id, await department_parents(ctx)
        )
    allowed: set[int] | None = ctx.memo["scoped_departments"]
    return allowed
