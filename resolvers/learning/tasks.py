"""Learning tasks: managers set them for a department (reach `manage`: live tasks of the departments in their
data scope), physicians work through their own assignments (reach `own`), chiefs follow completion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.learning import AssignmentStatus, LearningAssignment, LearningTask
from models.organisation import Department
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.education import check_url
from resolvers.learning.assignment import assign_missing, sync
from resolvers.moderation import plain_text

MATERIAL_KINDS = ("article", "video", "link")


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
            ref = check_url(ref, "materials", required=True) or ""
        cleaned.append({"kind": kind, "ref": ref, "title": plain_text(item.get("title"), "materials", limit=200)})
    return cleaned


def _check_due(value: date, ctx: Context) -> date:
    today = ctx.today()
    if not today <= value <= today + timedelta(days=3 * 366):
        raise bad_input("A due date from today to three years ahead", "dueDate")
    return value


# ---- tasks (managers) ----------------------------------------------------------------------------


async def create_task(ctx: Context, data: TaskInput) -> LearningTask:
    if data.department_id is None or data.due_date is None:
        raise bad_input("Required", "departmentId" if data.department_id is None else "dueDate")
    if not (await ctx.access()).reaches_department(data.department_id):
        raise not_found("Department")
    row = LearningTask(
        title=plain_text(data.title, "title", limit=200),
        description=plain_text(data.description, "description", limit=5000, required=False),
        materials=_materials(data.materials or ()),
        department_id=data.department_id,
        due_date=_check_due(data.due_date, ctx),
        author_id=ctx.principal.user_id,
    )
    async with ctx.data.write(operation="createLearningTask", action="create", entity_type="LearningTask") as unit:
        if await unit.find(Department, data.department_id) is None:
            raise not_found("Department")
        unit.add(row)
        await unit.flush()
        assigned = await assign_missing(ctx, unit, department_id=row.department_id)
        unit.entity_id = str(row.id)
        unit.detail = {"assigned": assigned}
    return row


async def update_task(ctx: Context, task_id: int, data: TaskInput) -> LearningTask:
    async with ctx.data.write(operation="updateLearningTask", action="update", entity_type="LearningTask") as unit:
        row: LearningTask = await unit.get(LearningTask, task_id)
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
        await unit.flush()
        assigned = await assign_missing(ctx, unit, department_id=row.department_id)
        unit.entity_id = str(row.id)
        unit.detail = {"assigned": assigned}
    return row


async def delete_task(ctx: Context, task_id: int) -> bool:
    """Kept, marked deleted, with its assignments (the completion record stays)."""
    async with ctx.data.write(operation="deleteLearningTask", action="delete", entity_type="LearningTask") as unit:
        row = await unit.get(LearningTask, task_id)
        row.deleted_at = utcnow()
        unit.entity_id = str(row.id)
    return True


async def list_tasks(
    ctx: Context, *, department_id: int | None, first: int | None, after: str | None
) -> Page[LearningTask]:
    await sync(ctx)  # joiners first, so the completion figures count them
    statement = await ctx.data.select(LearningTask, purpose="manage")
    if department_id is not None:
        statement = statement.where(LearningTask.department_id == department_id)
    return await ctx.data.page(statement, keys=[LearningTask.id], first=first, after=after, descending=True)


async def get_task(ctx: Context, task_id: int) -> LearningTask:
    row: LearningTask = await ctx.data.get(LearningTask, task_id, purpose="manage")
    await sync(ctx, department_id=row.department_id)
    return row


async def task_assignments(
    ctx: Context, task: LearningTask, *, status: str | None, first: int | None, after: str | None
) -> Page[LearningAssignment]:
    statement = await ctx.data.select(LearningAssignment, then=lambda s: s.where(LearningAssignment.task_id == task.id))
    if status is not None:
        statement = statement.where(LearningAssignment.status == status)
    return await ctx.data.page(statement, keys=[LearningAssignment.id], first=first, after=after)


# ---- a physician's own assignments ---------------------------------------------------------------


async def my_assignments(
    ctx: Context, *, include_completed: bool, first: int | None, after: str | None
) -> Page[LearningAssignment]:
    await sync(ctx, user_id=ctx.principal.user_id)
    statement = await ctx.data.select(LearningAssignment, purpose="own")
    if not include_completed:
        statement = statement.where(LearningAssignment.status != AssignmentStatus.COMPLETED.value)
    return await ctx.data.page(statement, keys=[LearningAssignment.id], first=first, after=after)


async def update_progress(ctx: Context, assignment_id: int, *, progress: int, complete: bool) -> LearningAssignment:
    if not 0 <= progress <= 100:
        raise bad_input("Progress is a percentage, 0 to 100", "progress")
    operation = "completeLearningTask" if complete else "updateLearningProgress"
    async with ctx.data.write(operation=operation, action="update", entity_type="LearningAssignment") as unit:
        row: LearningAssignment = await unit.get(LearningAssignment, assignment_id)
        if row.status == AssignmentStatus.COMPLETED.value:
            raise bad_input("This task is already completed", "assignmentId")
        if complete or progress == 100:
            row.status, row.progress, row.completed_at = AssignmentStatus.COMPLETED.value, 100, utcnow()
        else:
            row.status, row.progress = AssignmentStatus.IN_PROGRESS.value, progress
        unit.entity_id = str(row.id)
        unit.detail = {"progress": row.progress, "status": row.status}
    return row
