"""Learning tasks for medical staff, assigned to every physician and chief physician of a department.

A task is assigned when it is created, and to anyone who joins the department (or gains one of those
roles) while it is open (not deleted, due date not passed). Joiners are assigned lazily: whenever a
physician lists their tasks or a manager opens a department's overview, `assign_open_tasks` inserts
what is missing (one INSERT ... SELECT, recorded as an event). Code that changes a user's department or
roles may call `assign_open_tasks(session, user_id=...)` as well; nothing depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.learning import AssignmentStatus, LearningAssignment, LearningTask
from models.role import Role, UserRole
from models.user import User, UserStatus
from policies.capabilities import Capability
from policies.scope import department_filter
from resolvers.audit.unit import make_event, write_unit
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.data.tree import scoped_department_ids
from resolvers.moderation import plain_text

MATERIAL_KINDS = ("article", "video", "link")


def _eligible_users(assignee_roles: Sequence[str]) -> Any:
    """Active users holding a role with `capability:learning.assignee`."""
    return (
        select(User.id, User.department_id)
        .where(
            User.status == UserStatus.ACTIVE.value,
            User.id.in_(
                select(UserRole.user_id)
                .join(Role, Role.id == UserRole.role_id)
                .where(Role.key.in_(list(assignee_roles)))
            ),
        )
        .subquery()
    )


def _assignees(ctx: Context) -> list[str]:
    return ctx.services.policy.holders(Capability.LEARNING_ASSIGNEE)


def _open(today: date) -> ColumnElement[bool]:
    return and_(LearningTask.deleted_at.is_(None), LearningTask.due_date >= today)


async def assign_open_tasks(
    session: AsyncSession,
    *,
    today: date,
    assignee_roles: Sequence[str],
    user_id: int | None = None,
    department_id: int | None = None,
) -> int:
    """Assign every open task to every eligible member of its department who lacks it; how many rows."""
    users = _eligible_users(assignee_roles)
    conditions = [_open(today)]
    if user_id is not None:
        conditions.append(users.c.id == user_id)
    if department_id is not None:
        conditions.append(LearningTask.department_id == department_id)
    missing = (
        select(
            LearningTask.id,
            users.c.id,
            literal(AssignmentStatus.ASSIGNED.value),
            literal(0),
            literal(utcnow(), LearningAssignment.__table__.c.assigned_at.type),  # type: ignore[attr-defined]
        )
        .join(users, users.c.department_id == LearningTask.department_id)
        .where(
            *conditions,
            ~exists().where(LearningAssignment.task_id == LearningTask.id, LearningAssignment.user_id == users.c.id),
        )
    )
    result: Any = await session.execute(
        insert(LearningAssignment).from_select(["task_id", "user_id", "status", "progress", "assigned_at"], missing)
    )
    return int(result.rowcount or 0)


async def _sync(ctx: Context, *, user_id: int | None = None, department_id: int | None = None) -> None:
    """Lazy assignment for joiners, in its own recorded transaction; a concurrent twin is harmless."""
    try:
        async with ctx.db.transaction() as session:
            added = await assign_open_tasks(
                session, today=ctx.today(), assignee_roles=_assignees(ctx), user_id=user_id, department_id=department_id
            )
            if added:
                session.add(
                    make_event(
                        ctx,
                        action="create",
                        operation="assignLearningTasks",
                        entity_type="LearningAssignment",
                        detail={"assigned": added, "user": user_id, "department": department_id},
                    )
                )
    except IntegrityError:
        pass  # another request assigned the same rows first


# ---- tasks (managers) ----------------------------------------------------------------------------


@dataclass
class TaskInput:
    title: str | None = None
    description: str | None = None
    materials: Sequence[dict[str, str]] | None = None
    department_id: int | None = None
    due_date: date | None = None


def _materials(values: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    if len(values) > 50:
        raise bad_input("At most 50 materials", "materials")
    cleaned = []
    for item in values:
        kind = item.get("kind", "")
        if kind not in MATERIAL_KINDS:
            raise bad_input(f"A material's kind is one of: {', '.join(MATERIAL_KINDS)}", "materials")
        ref = plain_text(item.get("ref"), "materials", limit=500)
        if kind == "link":
            from resolvers.education import check_url

            ref = check_url(ref, "materials", required=True) or ""
        cleaned.append({"kind": kind, "ref": ref, "title": plain_text(item.get("title"), "materials", limit=200)})
    return cleaned


async def _check_department(ctx: Context, department_id: int) -> None:
    allowed = await scoped_department_ids(ctx)
    if allowed is not None and department_id not in allowed:
        raise not_found("Department")


def _check_due(value: date, ctx: Context) -> date:
    today = ctx.today()
    if not today <= value <= today + timedelta(days=3 * 366):
        raise bad_input("A due date from today to three years ahead", "dueDate")
    return value


async def create_task(ctx: Context, data: TaskInput) -> LearningTask:
    if data.department_id is None or data.due_date is None:
        raise bad_input("Required", "departmentId" if data.department_id is None else "dueDate")
    await _check_department(ctx, data.department_id)
    row = LearningTask(
        title=plain_text(data.title, "title", limit=200),
        description=plain_text(data.description, "description", limit=5000, required=False),
        materials=_materials(data.materials or ()),
        department_id=data.department_id,
        due_date=_check_due(data.due_date, ctx),
        author_id=ctx.principal.user_id,
    )
    async with write_unit(ctx, operation="createLearningTask", action="create", entity_type="LearningTask") as unit:
        from models.organisation import Department

        if await unit.session.get(Department, data.department_id) is None:
            raise not_found("Department")
        unit.session.add(row)
        await unit.session.flush()
        assigned = await assign_open_tasks(
            unit.session, today=ctx.today(), assignee_roles=_assignees(ctx), department_id=row.department_id
        )
        unit.entity_id = str(row.id)
        unit.detail = {"assigned": assigned}
    return row


async def _managed_task(ctx: Context, session: AsyncSession, task_id: int) -> LearningTask:
    row = (
        await session.execute(
            select(LearningTask).where(
                LearningTask.id == task_id,
                LearningTask.deleted_at.is_(None),
                department_filter(LearningTask.department_id, await scoped_department_ids(ctx)),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found("LearningTask")
    return row


async def update_task(ctx: Context, task_id: int, data: TaskInput) -> LearningTask:
    async with write_unit(ctx, operation="updateLearningTask", action="update", entity_type="LearningTask") as unit:
        row = await _managed_task(ctx, unit.session, task_id)
        if data.title is not None:
            row.title = plain_text(data.title, "title", limit=200)
        if data.description is not None:
            row.description = plain_text(data.description, "description", limit=5000, required=False)
        if data.materials is not None:
            row.materials = _materials(data.materials)
        if data.due_date is not None:
            row.due_date = _check_due(data.due_date, ctx)
        if data.department_id is not None and data.department_id != row.department_id:
            raise bad_input("A task stays in its department: create a new one", "departmentId")
        row.updated_at = utcnow()
        await unit.session.flush()
        assigned = await assign_open_tasks(
            unit.session, today=ctx.today(), assignee_roles=_assignees(ctx), department_id=row.department_id
        )
        unit.entity_id = str(row.id)
        unit.detail = {"assigned": assigned}
    return row


async def delete_task(ctx: Context, task_id: int) -> bool:
    """Kept, marked deleted, with its assignments (the completion record stays)."""
    async with write_unit(ctx, operation="deleteLearningTask", action="delete", entity_type="LearningTask") as unit:
        row = await _managed_task(ctx, unit.session, task_id)
        row.deleted_at = utcnow()
        unit.entity_id = str(row.id)
    return True


async def list_tasks(
    ctx: Context, *, department_id: int | None, first: int | None, after: str | None
) -> Page[LearningTask]:
    await _sync(ctx)  # joiners first, so the completion figures count them
    statement = select(LearningTask).where(
        LearningTask.deleted_at.is_(None),
        department_filter(LearningTask.department_id, await scoped_department_ids(ctx)),
    )
    if department_id is not None:
        statement = statement.where(LearningTask.department_id == department_id)
    return await paginate(
        ctx.reads,
        statement,
        keys=[LearningTask.id],
        key_of=lambda r: [r.id],
        first=first,
        after=after,
        descending=True,
    )


async def get_task(ctx: Context, task_id: int) -> LearningTask:
    async with ctx.db.session() as session:
        row = await _managed_task(ctx, session, task_id)
    await _sync(ctx, department_id=row.department_id)
    return row


async def task_assignments(
    ctx: Context, task: LearningTask, *, status: str | None, first: int | None, after: str | None
) -> Page[LearningAssignment]:
    statement = select(LearningAssignment).where(LearningAssignment.task_id == task.id)
    if status is not None:
        statement = statement.where(LearningAssignment.status == status)
    return await paginate(
        ctx.reads, statement, keys=[LearningAssignment.id], key_of=lambda r: [r.id], first=first, after=after
    )


# ---- a physician's own assignments ---------------------------------------------------------------


async def my_assignments(
    ctx: Context, *, include_completed: bool, first: int | None, after: str | None
) -> Page[LearningAssignment]:
    await _sync(ctx, user_id=ctx.principal.user_id)
    statement = (
        select(LearningAssignment)
        .join(LearningTask, LearningTask.id == LearningAssignment.task_id)
        .where(LearningAssignment.user_id == ctx.principal.user_id, LearningTask.deleted_at.is_(None))
    )
    if not include_completed:
        statement = statement.where(LearningAssignment.status != AssignmentStatus.COMPLETED.value)
    return await paginate(
        ctx.reads, statement, keys=[LearningAssignment.id], key_of=lambda r: [r.id], first=first, after=after
    )


async def update_progress(ctx: Context, assignment_id: int, *, progress: int, complete: bool) -> LearningAssignment:
    if not 0 <= progress <= 100:
        raise bad_input("Progress is a percentage, 0 to 100", "progress")
    operation = "completeLearningTask" if complete else "updateLearningProgress"
    async with write_unit(ctx, operation=operation, action="update", entity_type="LearningAssignment") as unit:
        row = (
            await unit.session.execute(
                select(LearningAssignment)
                .join(LearningTask, LearningTask.id == LearningAssignment.task_id)
                .where(
                    LearningAssignment.id == assignment_id,
                    LearningAssignment.user_id == ctx.principal.user_id,
                    LearningTask.deleted_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise not_found("LearningAssignment")
        if row.status == AssignmentStatus.COMPLETED.value:
            raise bad_input("This task is already completed", "assignmentId")
        if complete or progress == 100:
            row.status, row.progress, row.completed_at = AssignmentStatus.COMPLETED.value, 100, utcnow()
        else:
            row.status, row.progress = AssignmentStatus.IN_PROGRESS.value, progress
        unit.entity_id = str(row.id)
        unit.detail = {"progress": row.progress, "status": row.status}
    return row


# ---- overview (chief physicians) -----------------------------------------------------------------


async def status_counts(ctx: Context, task_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LearningAssignment.task_id, LearningAssignment.status, func.count())
            .where(LearningAssignment.task_id.in_(list(task_ids)))
            .group_by(LearningAssignment.task_id, LearningAssignment.status)
        )
    counts: dict[int, dict[str, int]] = {pk: {} for pk in task_ids}
    for task_id, status, count in rows.all():
        counts[task_id][status] = int(count)
    return counts


class LearningLoaders:
    def __init__(self, ctx: Context) -> None:
        from strawberry.dataloader import DataLoader

        self._ctx = ctx
        self.counts_by_task_id: DataLoader[int, dict[str, int]] = DataLoader(self._counts)
        self.task_by_id: DataLoader[int, LearningTask | None] = DataLoader(self._tasks)

    async def _counts(self, ids: Sequence[int]) -> list[dict[str, int]]:
        found = await status_counts(self._ctx, ids)
        return [found.get(pk, {}) for pk in ids]

    async def _tasks(self, ids: Sequence[int]) -> list[LearningTask | None]:
        async with self._ctx.db.session() as session:
            rows = (await session.execute(select(LearningTask).where(LearningTask.id.in_(list(ids))))).scalars().all()
        found = {row.id: row for row in rows}
        return [found.get(pk) for pk in ids]


def learning_loaders(ctx: Context) -> LearningLoaders:
    loaders = ctx.loaders_of(LearningLoaders)
    return loaders  # type: ignore[no-any-return]
