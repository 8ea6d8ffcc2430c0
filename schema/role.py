"""Roles, their data scope and their permission grants."""

from __future__ import annotations

from typing import Annotated

import strawberry

from models.role import DataScope, Role
from policies.capabilities import COORDINATES as CAPABILITY_COORDINATES
from resolvers import role as role_resolvers
from resolvers.data.context import Info
from schema.engine.catalog import permission_catalog

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


@strawberry.type(name="RolePermission", description="A permission a role holds, and which role's own line grants it.")
class RolePermissionType:
    object: str = strawberry.field(description="A schema coordinate (`Patient.phone`, `User.*`) or `capability:...`.")
    action: str = strawberry.field(description="read, read_masked or execute")
    origin: str = strawberry.field(
        description="The role whose own policy line grants it (the role itself, or one it inherits)."
    )
    inherited: bool = strawberry.field(description="Granted by an inherited role rather than the role's own line.")


@strawberry.type(name="CatalogPermission", description="One coordinate or capability a permission may name.")
class CatalogPermissionType:
    object: str = strawberry.field(description="A schema coordinate (`Type.field`, `Type.*`) or `capability:...`.")
    actions: list[str] = strawberry.field(description="The actions it may be granted with.")
    description: str = strawberry.field(description="What it gives.")


@strawberry.type(name="PermissionDomain", description="The grantable permissions of one domain of the platform.")
class PermissionDomainType:
    domain: str = strawberry.field(description="The domain (`clinical`, `organisation`, `platform`, ...).")
    permissions: list[CatalogPermissionType] = strawberry.field(description="Its coordinates and capabilities.")


@strawberry.input(description="What to change about a role; fields left out stay as they are.")
class UpdateRoleInput:
    name: str | None = strawberry.field(default=None, description="New display name (1-100 characters).")
    description: str | None = strawberry.field(default=None, description="New description.")
    data_scope: DataScopeEnum | None = strawberry.field(default=None, description="New data scope.")  # type: ignore[valid-type]
    inherits: list[str] | None = strawberry.field(
        default=None, description="The roles it inherits, replacing the current ones (no cycles; not for built-ins)."
    )


@strawberry.type
class RoleQuery:
    @strawberry.field
    async def roles(self, info: Info) -> list[RoleType]:
        return [RoleType.from_row(row) for row in await role_resolvers.list_roles(info.context)]

    @strawberry.field(description="What a role may do: its own permissions, then those it inherits, with their origin.")
    async def role_permissions(
        self, info: Info, role_key: Annotated[str, strawberry.argument(description="The role's key.")]
    ) -> list[RolePermissionType]:
        held = await role_resolvers.role_permissions(info.context, role_key)
        return [
            RolePermissionType(object=p.object, action=p.action, origin=p.origin, inherited=p.inherited_by(role_key))
            for p in held
        ]

    @strawberry.field(description="Every coordinate and capability that can be granted, by domain, with descriptions.")
    def permission_catalog(self, info: Info) -> list[PermissionDomainType]:
        domains: dict[str, list[CatalogPermissionType]] = {}
        for entry in permission_catalog(info.context.services.registry.full):
            domains.setdefault(entry.domain, []).append(
                CatalogPermissionType(object=entry.object, actions=list(entry.actions), description=entry.description)
            )
        return [PermissionDomainType(domain=name, permissions=domains[name]) for name in sorted(domains)]

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

    @strawberry.mutation(description="Rename a role, change its data scope or the roles it inherits.")
    async def update_role(
        self,
        info: Info,
        key: Annotated[str, strawberry.argument(description="The role's key (never changes).")],
        input: Annotated[UpdateRoleInput, strawberry.argument(description="What to change.")],
    ) -> RoleType:
        row = await role_resolvers.update_role(
            info.context,
            key=key,
            name=input.name,
            description=input.description,
            data_scope=DataScope(input.data_scope) if input.data_scope is not None else None,
            inherits=input.inherits,
        )
        return RoleType.from_row(row)

    @strawberry.mutation(description="Delete a custom role that no user holds and no role inherits; built-ins stay.")
    async def delete_role(
        self, info: Info, key: Annotated[str, strawberry.argument(description="The role's key.")]
    ) -> RoleType:
        return RoleType.from_row(await role_resolvers.delete_role(info.context, key=key))
