"""Roles, their data scope and their permission grants."""

from __future__ import annotations

import strawberry

from models.role import DataScope, Role
from policies.capabilities import COORDINATES as CAPABILITY_COORDINATES
from resolvers import role as role_resolvers
from resolvers.data.context import Info

DataScopeEnum = strawberry.enum(DataScope, name="DataScope")


@strawberry.type(name="Permission")
class PermissionType:
    object: str = strawberry.field(description="A schema coordinate such as `Patient.phone` or `User.*`.")
    action: str = strawberry.field(description="read, read_masked or execute")


@strawberry.type(name="Role")
class RoleType:
    id: strawberry.ID
    key: str
    name: str
    description: str
    builtin: bool
    _scope: strawberry.Private[str]

    @strawberry.field
    def data_scope(self) -> DataScopeEnum:  # type: ignore[valid-type]
        return DataScope(self._scope)

    @classmethod
    def from_row(cls, row: Role) -> RoleType:
        from core.ids import encode_id

        return cls(
            id=strawberry.ID(encode_id("Role", row.id)),  # type: ignore[arg-type]
            key=row.key,
            name=row.name,
            description=row.description,
            builtin=row.is_builtin,
            _scope=row.data_scope,
        )

    @strawberry.field(description="Roles whose permissions this role inherits.")
    def inherits(self, info: Info) -> list[str]:
        return [rule[1] for rule in info.context.services.policy.enforcer.get_filtered_grouping_policy(0, self.key)]

    @strawberry.field(description="Permissions granted to this role directly (not inherited).")
    def permissions(self, info: Info) -> list[PermissionType]:
        return [
            PermissionType(object=o, action=a) for o, a in info.context.services.policy.direct_permissions(self.key)
        ]

    @strawberry.field(description="Every permission the role holds, inherited ones included.")
    def effective_permissions(self, info: Info) -> list[PermissionType]:
        held = info.context.services.policy.permissions(self.key)
        return [PermissionType(object=o, action=a) for o, a in sorted(held)]


@strawberry.type
class RoleQuery:
    @strawberry.field
    async def roles(self, info: Info) -> list[RoleType]:
        return [RoleType.from_row(row) for row in await role_resolvers.list_roles(info.context)]

    @strawberry.field(description="Every schema coordinate and capability (`capability:...`) a permission may name.")
    def permission_objects(self, info: Info) -> list[str]:
        return sorted(info.context.services.coordinates | CAPABILITY_COORDINATES)


@strawberry.type
class RoleMutation:
    @strawberry.mutation(description="Grant a role a permission; its schema changes on its next request.")
    async def grant_permission(self, info: Info, role_key: str, object: str, action: str) -> RoleType:
        row = await role_resolvers.grant_permission(info.context, role_key=role_key, coordinate=object, action=action)
        return RoleType.from_row(row)

    @strawberry.mutation(description="Take a permission from a role; its schema changes on its next request.")
    async def revoke_permission(self, info: Info, role_key: str, object: str, action: str) -> RoleType:
        row = await role_resolvers.revoke_permission(info.context, role_key=role_key, coordinate=object, action=action)
        return RoleType.from_row(row)

    @strawberry.mutation
    async def create_role(
        self,
        info: Info,
        key: str,
        name: str,
        data_scope: DataScopeEnum,  # type: ignore[valid-type]
        inherits: list[str] | None = None,
        description: str = "",
    ) -> RoleType:
        row = await role_resolvers.create_role(
            info.context,
            key=key,
            name=name,
            data_scope=DataScope(data_scope),
            inherits=inherits or [],
            description=description,
        )
        return RoleType.from_row(row)
