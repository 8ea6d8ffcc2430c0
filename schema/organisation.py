"""Departments and positions."""

from __future__ import annotations

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

    @classmethod
    def from_row(cls, row: Department) -> DepartmentType:
        return cls(
            id=strawberry.ID(encode_id("Department", row.id)),  # type: ignore[arg-type]
            name=row.name,
            code=row.code,
            parent_id=strawberry.ID(encode_id("Department", row.parent_id)) if row.parent_id else None,
            sort_order=row.sort_order,
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


@strawberry.type
class OrganisationQuery:
    @strawberry.field(description="Every department as a flat list; build the tree from parentId.")
    async def departments(self, info: Info) -> list[DepartmentType]:
        return [DepartmentType.from_row(row) for row in await org.list_departments(info.context)]

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
        )
        return DepartmentType.from_row(await org.update_department(info.context, decode_id("Department", id), data))

    @strawberry.mutation
    async def create_position(self, info: Info, name: str, description: str = "") -> PositionType:
        return PositionType.from_row(await org.create_position(info.context, name=name, description=description))

    @strawberry.mutation
    async def update_position(
        self, info: Info, id: strawberry.ID, name: str | None = None, description: str | None = None
    ) -> PositionType:
        row = await org.update_position(info.context, decode_id("Position", id), name=name, description=description)
        return PositionType.from_row(row)
