"""Departments (a tree, served flat with parentId) and positions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import AppError, ErrorCode, bad_input, conflict
from core.timeutil import utcnow
from models.organisation import Department, Position
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.references import referring_tables
from resolvers.data.tree import departments_changed

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


async def list_departments(ctx: Context, *, include_disabled: bool = True) -> list[Department]:
    def refine(statement: Any) -> Any:
        statement = statement.order_by(Department.sort_order, Department.id)
        return statement if include_disabled else statement.where(Department.disabled.is_(False))  # type: ignore[attr-defined]

    return await ctx.data.objects(await ctx.data.select(Department, then=refine))


async def open_department(unit: WriteUnit, department_id: int, field: str = "departmentId") -> Department:
    """A department that takes new members (users, patients, schedules): known and not disabled."""
    department: Department | None = await unit.find(Department, department_id)
    if department is None:
        raise bad_input("Unknown department", field)
    if department.disabled:
        raise bad_input("That department is disabled: it takes no new users, patients or schedules", field)
    return department


_SIBLING_CONFLICT = "A department of that name exists under the same parent"


async def _unique_among_siblings(
    ctx: Context, unit: WriteUnit, name: str, parent_id: int | None, department_id: int | None = None
) -> None:
    """No two departments under one parent share a name (compared without case or surrounding space): checked here
    for a clear answer, and by the unique sibling key when another writer commits the same name in between."""
    parent = Department.parent_id.is_(None) if parent_id is None else Department.parent_id == parent_id  # type: ignore[union-attr]
    statement = await ctx.data.select(Department, Department.id, Department.name, then=lambda s: s.where(parent))
    for other_id, other_name in await unit.rows(statement):
        if other_id != department_id and other_name.strip().casefold() == name.casefold():
            raise AppError(ErrorCode.CONFLICT, _SIBLING_CONFLICT, field="name")


async def _flush_department(unit: WriteUnit) -> None:
    """Write the department now, so a sibling committed with the same name since the check above (a race) is
    refused with the same answer as the check, not as a duplicate code."""
    await unit.flush(
        unique=("uq_department_sibling_key", "sibling_key"),
        refusal=AppError(ErrorCode.CONFLICT, _SIBLING_CONFLICT, field="name"),
    )


async def list_positions(ctx: Context) -> list[Position]:
    return await ctx.data.objects(await ctx.data.select(Position, then=lambda s: s.order_by(Position.id)))


def _name(value: str, field: str = "name") -> str:
    value = value.strip()
    if not value or len(value) > 100:
        raise bad_input("Name must be 1 to 100 characters", field)
    return value


@dataclass
class DepartmentInput:
    name: str | None = None
    code: str | None = None
    parent_id: int | None = None
    set_parent: bool = False
    sort_order: int | None = None
    disabled: bool | None = None


async def create_department(ctx: Context, data: DepartmentInput) -> Department:
    name = _name(data.name or "")
    code = (data.code or "").strip()
    if not _CODE.match(code):
        raise bad_input("Code: 1-40 letters, digits, '_' or '-'", "code")
    async with ctx.data.write(
        operation="createDepartment",
        action="create",
        entity_type="Department",
        conflict_message="A department with that code exists",
    ) as unit:
        if data.parent_id is not None and await unit.find(Department, data.parent_id) is None:
            raise bad_input("Unknown parent department", "parentId")
        await _unique_among_siblings(ctx, unit, name, data.parent_id)
        department = Department(name=name, code=code, parent_id=data.parent_id, sort_order=data.sort_order or 0)
        unit.add(department)
        await _flush_department(unit)
        unit.entity_id = str(department.id)
    await departments_changed(ctx)
    return department


async def update_department(ctx: Context, department_id: int, data: DepartmentInput) -> Department:
    async with ctx.data.write(
        operation="updateDepartment",
        action="update",
        entity_type="Department",
        conflict_message="A department with that code exists",
    ) as unit:
        department: Department = await unit.get(Department, department_id)
        unit.entity_id = str(department_id)
        if data.name is not None:
            department.name = _name(data.name)
        if data.code is not None:
            if not _CODE.match(data.code.strip()):
                raise bad_input("Code: 1-40 letters, digits, '_' or '-'", "code")
            department.code = data.code.strip()
        if data.sort_order is not None:
            department.sort_order = data.sort_order
        if data.set_parent:
            await _check_parent(unit, department_id, data.parent_id)
            unit.detail["parentId"] = {"from": department.parent_id, "to": data.parent_id}
            department.parent_id = data.parent_id
        if data.disabled is not None and data.disabled != department.disabled:
            department.disabled = data.disabled
            unit.detail["disabled"] = data.disabled
        if data.name is not None or data.set_parent:
            await _unique_among_siblings(ctx, unit, department.name, department.parent_id, department_id)
        department.updated_at = utcnow()
        unit.add(department)
        await _flush_department(unit)
    await departments_changed(ctx)
    return department


async def _delete_unreferenced(ctx: Context, model: Any, row_id: int, *, operation: str, what: str) -> Any:
    """Delete a department or position nothing refers to: no row of any table with a foreign key to it."""
    async with ctx.data.write(operation=operation, action="delete", entity_type=model.__name__) as unit:
        row = await unit.get(model, row_id)
        unit.entity_id = str(row_id)
        tables = await referring_tables(unit, model, row_id)
        if tables:
            raise conflict(f"The {what} is still referred to by rows of: {', '.join(tables)}")
        unit.detail = {"name": row.name}
        await unit.delete(row)
    return row


async def delete_department(ctx: Context, department_id: int) -> Department:
    department: Department = await _delete_unreferenced(
        ctx, Department, department_id, operation="deleteDepartment", what="department"
    )
    await departments_changed(ctx)
    return department


async def delete_position(ctx: Context, position_id: int) -> Position:
    position: Position = await _delete_unreferenced(
        ctx, Position, position_id, operation="deletePosition", what="position"
    )
    return position


async def _check_parent(unit: WriteUnit, department_id: int, parent_id: int | None) -> None:
    """A department cannot move below itself: walk up from the new parent."""
    seen: set[int] = set()
    current = parent_id
    while current is not None:
        if current == department_id:
            raise bad_input("A department cannot be placed below itself", "parentId")
        if current in seen:
            break
        seen.add(current)
        parent = await unit.find(Department, current)
        if parent is None:
            raise bad_input("Unknown parent department", "parentId")
        current = parent.parent_id


async def create_position(ctx: Context, *, name: str, description: str) -> Position:
    async with ctx.data.write(
        operation="createPosition",
        action="create",
        entity_type="Position",
        conflict_message="A position with that name exists",
    ) as unit:
        position = Position(name=_name(name), description=description.strip()[:255])
        unit.add(position)
        await unit.flush()
        unit.entity_id = str(position.id)
    return position


async def update_position(ctx: Context, position_id: int, *, name: str | None, description: str | None) -> Position:
    async with ctx.data.write(
        operation="updatePosition",
        action="update",
        entity_type="Position",
        conflict_message="A position with that name exists",
    ) as unit:
        position: Position = await unit.get(Position, position_id)
        unit.entity_id = str(position_id)
        if name is not None:
            position.name = _name(name)
        if description is not None:
            position.description = description.strip()[:255]
        position.updated_at = utcnow()
        unit.add(position)
    return position
