"""Who receives a learning task: every active member of its department holding a role with
`capability:learning.assignee` (not inherited: an administrator does not receive a physician's duties).

A task is assigned when it is created or changed, and to anyone who joins the department (or gains such a
role) while it is open (not deleted, due date not passed). Joiners are assigned lazily: whenever a physician
lists their tasks or a manager opens a department's overview, `sync` adds what is missing, recorded as an
event. This is system work: a physician's reach covers neither their department's tasks nor its staff, so
the missing assignments are found through `ctx.data.unscoped(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, exists

from core.errors import AppError, ErrorCode
from models.learning import AssignmentStatus, LearningAssignment, LearningTask
from models.role import Role, UserRole
from models.user import User, UserStatus
from policies.capabilities import Capability
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

WHY = "lazy assignment of open learning tasks: a physician's reach covers neither their department's tasks nor staff"


def missing_assignments(
    start: Callable[..., Select[Any]],
    *,
    today: date,
    assignee_roles: Sequence[str],
    user_id: int | None = None,
    department_id: int | None = None,
) -> Select[Any]:
    """(task id, user id) of every open task and eligible member of its department who lacks it.

    `start` begins a statement (`ctx.data.unscoped(WHY).select`; the demo seeding passes its own)."""
    holders = start(UserRole.user_id).join(Role, Role.id == UserRole.role_id).where(Role.key.in_(list(assignee_roles)))
    users = (
        start(User.id, User.department_id)
        .where(User.status == UserStatus.ACTIVE.value, User.id.in_(holders))
        .subquery()
    )
    conditions = [LearningTask.deleted_at.is_(None), LearningTask.due_date >= today]
    if user_id is not None:
        conditions.append(users.c.id == user_id)
    if department_id is not None:
        conditions.append(LearningTask.department_id == department_id)
    return (
        start(LearningTask.id, users.c.id)
        .join(users, users.c.department_id == LearningTask.department_id)
        .where(
            *conditions,
            ~exists().where(LearningAssignment.task_id == LearningTask.id, LearningAssignment.user_id == users.c.id),
        )
        .order_by(LearningTask.id, users.c.id)
    )


def _missing(ctx: Context, *, user_id: int | None = None, department_id: int | None = None) -> Select[Any]:
    return missing_assignments(
        ctx.data.unscoped(WHY).select,
        today=ctx.today(),
        assignee_roles=ctx.services.policy.holders(Capability.LEARNING_ASSIGNEE),
        user_id=user_id,
        department_id=department_id,
    )


async def assign_missing(
    ctx: Context, unit: WriteUnit, *, user_id: int | None = None, department_id: int | None = None
) -> int:
    """Inside a write: add the missing assignments (of one user, or one department's tasks); how many."""
    pairs = await unit.rows(_missing(ctx, user_id=user_id, department_id=department_id))
    unit.add_all(
        [
            LearningAssignment(task_id=task_id, user_id=assignee, status=AssignmentStatus.ASSIGNED.value, progress=0)
            for task_id, assignee in pairs
        ]
    )
    await unit.flush()
    return len(pairs)


async def sync(ctx: Context, *, user_id: int | None = None, department_id: int | None = None) -> None:
    """Lazy assignment for joiners: a write (and its event) only when something is missing; a concurrent
    twin that assigned the same rows first is harmless."""
    if not await ctx.data.rows(_missing(ctx, user_id=user_id, department_id=department_id).limit(1)):
        return
    try:
        async with ctx.data.write(
            operation="assignLearningTasks", action="create", entity_type="LearningAssignment"
        ) as unit:
            assigned = await assign_missing(ctx, unit, user_id=user_id, department_id=department_id)
            unit.detail = {"assigned": assigned, "user": user_id, "department": department_id}
    except AppError as error:
        if error.code != ErrorCode.CONFLICT:
            raise
