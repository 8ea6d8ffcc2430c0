"""The department tree, read once per process; and from it each request's Access."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from sqlalchemy import select

from models.organisation import Department
from models.role import DataScope
from policies.access import Access, build_access

if TYPE_CHECKING:
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
    tree = ctx.services.department_tree
    if tree is not None:
        return await tree.parents(ctx)
    async with ctx.connection() as connection:  # a context outside the server (command line): read it
        rows = (await connection.execute(_TREE)).all()
    return {dep_id: parent for dep_id, parent in rows}


async def departments_changed(ctx: Context) -> None:
    """After a committed change to the department tree: every instance drops its copy."""
    await ctx.services.notifier.publish(DEPARTMENTS_CHANNEL)


async def access_for(ctx: Context) -> Access:
    """The principal's Access: its departments in reach (from the tree), capabilities and field decision."""
    principal = ctx.principal
    policy = ctx.services.policy
    roles = principal.schema_roles
    parents: Mapping[int, int | None] = {} if principal.data_scope is DataScope.ALL else await department_parents(ctx)
    return build_access(
        principal, parents=parents, capabilities=policy.capabilities(roles), decision=policy.decision(roles)
    )


async def scoped_department_ids(ctx: Context) -> set[int] | None:
    """Departments in the caller's reach (None: all). Transitional: domain code asks `ctx.access()`."""
    access = await ctx.access()
    return None if access.departments is None else set(access.departments)
