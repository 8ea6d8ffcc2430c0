"""Departments and positions."""

from __future__ import annotations

from typing import Annotated

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models.organisation import Department, Position
from resolvers import organisation as org
from resolvers.data.context import Info


@strawberry.type(name="Department")
class DepartmentType:
    id: strawberry.ID
    name: str
    code: str
    parent_id: strawberry.ID | None
    sort_order: int
    disabled: bool = strawberry.field(
        description="Takes no new users or patients and is left out of pickers; what it holds stays in reach."
    )

    @classmethod
    def from_row(cls, row: Department) -> DepartmentType:
        return cls(
            id=strawberry.ID(encode_id("Department", row.id)),  # type: ignore[arg-type]
            name=row.name,
            code=row.code,
            parent_id=strawberry.ID(encode_id("Department", row.parent_id)) if row.parent_id else None,
            sort_order=row.sort_order,
            disabled=row.disabled,
        )


@strawberry.type(name="Position")
class PositionType:
    id: strawberry.ID
    name: str
    description: str

    @classmethod
    def from_row(cls, row: Position) -> PositionType:
        return cls(id=strawberry.ID(encode_id("Position", row.id)), name=row.name, description=row.description)  # type: ignore[arg-type]


@strawberry.input
class CreateDepartmentInput:
    name: str
    code: str
    parent_id: strawberry.ID | None = None
    sort_order: int = 0


@strawberry.input
class UpdateDepartmentInput:
    name: str | None = None
    code: str | None = None
    parent_id: strawberry.ID | None = strawberry.UNSET
    sort_order: int | None = None
    disabled: bool | None = strawberry.field(
        default=None, description="Disable (true) or enable (false) the department; left out: unchanged."
    )


@strawberry.type
class OrganisationQuery:
    @strawberry.field(description="Every department as a flat list; build the tree from parentId.")
    async def departments(
        self,
        info: Info,
        include_disabled: Annotated[
            bool, strawberry.argument(description="Disabled departments too (the tree page); pickers leave them out.")
        ] = False,
    ) -> list[DepartmentType]:
        rows = await org.list_departments(info.context, include_disabled=include_disabled)
        return [DepartmentType.from_row(row) for row in rows]

    @strawberry.field
    async def positions(self, info: Info) -> list[PositionType]:
        return [PositionType.from_row(row) for row in await org.list_positions(info.context)]


@strawberry.type
class OrganisationMutation:
    @strawberry.mutation
    async def create_department(self, info: Info, input: CreateDepartmentInput) -> DepartmentType:
        data = org.DepartmentInput(
            name=input.name,
            code=input.code,
            parent_id=decode_optional_id("Department", input.parent_id),
            sort_order=input.sort_order,
        )
        return DepartmentType.from_row(await org.create_department(info.context, data))

    @strawberry.mutation
    async def update_department(self, info: Info, id: strawberry.ID, input: UpdateDepartmentInput) -> DepartmentType:
        set_parent = input.parent_id is not strawberry.UNSET
        data = org.DepartmentInput(
            name=input.name,
            code=input.code,
            sort_order=input.sort_order,
            set_parent=set_parent,
            parent_id=decode_optional_id("Department", input.parent_id) if set_parent else None,  # type: ignore[arg-type]
            disabled=input.disabled,
        )
        return DepartmentType.from_row(await org.update_department(info.context, decode_id("Department", id), data))

    @strawberry.mutation(description="Delete a department nothing refers to (no user, patient, sub-department, ...).")
    async def delete_department(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The department.")]
    ) -> DepartmentType:
        return DepartmentType.from_row(await org.delete_department(info.context, decode_id("Department", id)))

    @strawberry.mutation(description="Delete a position no user holds.")
    async def delete_position(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The position.")]
    ) -> PositionType:
        return PositionType.from_row(await org.delete_position(info.context, decode_id("Position", id)))

    @strawberry.mutation
    async def create_position(self, info: Info, name: str, description: str = "") -> PositionType:
        return PositionType.from_row(await org.create_position(info.context, name=name, description=description))

    @strawberry.mutation
    async def update_position(
        self, info: Info, id: strawberry.ID, name: str | None = None, description: str | None = None
    ) -> PositionType:
        row = await org.update_position(info.context, decode_id("Position", id), name=name, description=description)
        return PositionType.from_row(row)
