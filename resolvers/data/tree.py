"""The principal's data scope, resolved once per request; the department tree, once per process."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import select

from models.organisation import Department
from policies.scope import department_ids_in_scope
from resolvers.data.context import Context

_TREE = select(Department.id, Department.parent_id)  # built once
DEPARTMENTS_CHANNEL = "departments"


class DepartmentTree:
    """The department tree (id -> parent id) of one app instance, shared by its requests.

    Every scoped request needs it, and it changes a few times a year: a department created or moved
    publishes a notice on DEPARTMENTS_CHANNEL after its commit, and every instance drops its copy (through
    Redis in a cluster). A copy is also re-read when it is older than `max_age` seconds, so a notice lost
    on the way costs at most that long. A read that started before a drop does not keep its result.
    """

    def __init__(self, max_age: float = 10.0) -> None:
        self.max_age = max_age
        self._parents: MappingProxyType[int, int | None] | None = None
        self._read_at = 0.0
        self._generation = 0

    async def drop(self) -> None:
        self._parents = None
        self._generation += 1

    async def parents(self, ctx: Context) -> MappingProxyType[int, int | None]:
        parents = self._parents
        if parents is not None and time.monotonic() - self._read_at < self.max_age:
            return parents
        generation, started = self._generation, time.monotonic()
        async with ctx.connection() as connection:
            rows = (await connection.execute(_TREE)).all()
        parents = MappingProxyType({dep_id: parent for dep_id, parent in rows})
        if generation == self._generation:
            self._parents, self._read_at = parents, started
        return parents


async def department_parents(ctx: Context) -> Mapping[int, int | None]:
    if "department_parents" not in ctx.memo:
        tree: Any = ctx.services.extras.get("department_tree")
        if tree is not None:
            ctx.memo["department_parents"] = await tree.parents(ctx)
        else:  # a context outside the server (command line): read it
            async with ctx.connection() as connection:
                rows = (await connection.execute(_TREE)).all()
            ctx.memo["department_parents"] = {dep_id: parent for dep_id, parent in rows}
    parents: Mapping[int, int | None] = ctx.memo["department_parents"]
    return parents


async def departments_changed(ctx: Context) -> None:
    """After a committed change to the department tree: every instance drops its copy."""
    await ctx.services.notifier.publish(DEPARTMENTS_CHANNEL)


async def scoped_department_ids(ctx: Context) -> set[int] | None:
    """Departments whose records this principal may reach; None means all of them."""
    if "scoped_departments" not in ctx.memo:
        principal = ctx.principal
        ctx.memo["scoped_departments"] = department_ids_in_scope(
            principal.data_scope, principal.department_id, await department_parents(ctx)
        )
    allowed: set[int] | None = ctx.memo["scoped_departments"]
    return allowed
