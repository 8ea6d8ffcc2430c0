"""Accounts: the User type, `me`, and the administration of users."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.errors import not_found
from core.ids import decode_id, decode_optional_id, encode_id
from models.user import User, UserStatus
from resolvers import user as user_resolvers
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection
from schema.organisation import DepartmentType, PositionType
from schema.role import RoleType

UserStatusEnum = strawberry.enum(UserStatus, name="UserStatus")


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    username: str | None
    display_name: str
    phone: str | None
    status: UserStatusEnum  # type: ignore[valid-type]
    must_change_password: bool
    totp_enabled: bool
    has_wechat: bool
    created_at: datetime
    updated_at: datetime
    _pk: strawberry.Private[int]
    _department_id: strawberry.Private[int | None]
    _position_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: User) -> UserType:
        return cls(
            id=strawberry.ID(encode_id("User", row.id)),  # type: ignore[arg-type]
            username=row.username,
            display_name=row.display_name,
            phone=row.phone,
            status=UserStatus(row.status),
            must_change_password=row.must_change_password,
            totp_enabled=row.totp_enabled,
            has_wechat=row.wechat_openid is not None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _pk=row.id,  # type: ignore[arg-type]
            _department_id=row.department_id,
            _position_id=row.position_id,
        )

    @strawberry.field
    async def roles(self, info: Info) -> list[RoleType]:
        return [RoleType.from_row(role) for role in await info.context.loaders.roles_by_user_id.load(self._pk)]

    @strawberry.field
    async def department(self, info: Info) -> DepartmentType | None:
        if self._department_id is None:
            return None
        row = await info.context.loaders.department_by_id.load(self._department_id)
        return DepartmentType.from_row(row) if row else None

    @strawberry.field
    async def position(self, info: Info) -> PositionType | None:
        if self._position_id is None:
            return None
        row = await info.context.loaders.position_by_id.load(self._position_id)
        return PositionType.from_row(row) if row else None


@strawberry.input
class UserFilter:
    status: UserStatusEnum | None = None  # type: ignore[valid-type]
    role_key: str | None = None
    department_id: strawberry.ID | None = None
    search: str | None = strawberry.field(
        default=None, description="Part of a username or name, or a whole phone number."
    )


@strawberry.input
class CreateUserInput:
    username: str
    display_name: str
    password: str = strawberry.field(description="Initial password; the user must change it at first login.")
    phone: str | None = None
    department_id: strawberry.ID | None = None
    position_id: strawberry.ID | None = None
    role_keys: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateUserInput:
    display_name: str | None = None
    phone: str | None = None
    department_id: strawberry.ID | None = strawberry.UNSET
    position_id: strawberry.ID | None = strawberry.UNSET


@strawberry.type
class ResetPasswordPayload:
    user: UserType
    temporary_password: str = strawberry.field(description="Shown once; the user must change it at next login.")


@strawberry.type
class UserQuery:
    @strawberry.field(description="Users in your data scope, by status, role, department or a search term.")
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: UserFilter | None = None
    ) -> Connection[UserType]:
        f = filter or UserFilter()
        filters = user_resolvers.UserFilter(
            status=f.status.value if f.status else None,  # type: ignore[attr-defined]
            role_key=f.role_key,
            department_id=decode_optional_id("Department", f.department_id),
            search=f.search,
        )
        page = await user_resolvers.list_users(info.context, first=first, after=after, filters=filters)
        return connection(page, UserType.from_row)

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> UserType:
        row = await user_resolvers.get_user(info.context, decode_id("User", id))
        if row is None:
            raise not_found("User")
        return UserType.from_row(row)


@strawberry.type
class UserMutation:
    @strawberry.mutation
    async def create_user(self, info: Info, input: CreateUserInput) -> UserType:
        data = user_resolvers.NewUser(
            username=input.username,
            display_name=input.display_name,
            password=input.password,
            phone=input.phone,
            department_id=decode_optional_id("Department", input.department_id),
            position_id=decode_optional_id("Position", input.position_id),
            role_keys=input.role_keys,
        )
        return UserType.from_row(await user_resolvers.create_user(info.context, data))

    @strawberry.mutation
    async def update_user(self, info: Info, id: strawberry.ID, input: UpdateUserInput) -> UserType:
        set_department = input.department_id is not strawberry.UNSET
        set_position = input.position_id is not strawberry.UNSET
        changes = user_resolvers.UserChanges(
            display_name=input.display_name,
            phone=input.phone,
            set_department=set_department,
            set_position=set_position,
            department_id=decode_optional_id("Department", input.department_id) if set_department else None,  # type: ignore[arg-type]
            position_id=decode_optional_id("Position", input.position_id) if set_position else None,  # type: ignore[arg-type]
        )
        return UserType.from_row(await user_resolvers.update_user(info.context, decode_id("User", id), changes))

    @strawberry.mutation(description="Disable an account: its sessions end at once.")
    async def disable_user(self, info: Info, id: strawberry.ID) -> UserType:
        row = await user_resolvers.set_status(info.context, decode_id("User", id), UserStatus.DISABLED)
        return UserType.from_row(row)

    @strawberry.mutation
    async def enable_user(self, info: Info, id: strawberry.ID) -> UserType:
        row = await user_resolvers.set_status(info.context, decode_id("User", id), UserStatus.ACTIVE)
        return UserType.from_row(row)

    @strawberry.mutation(description="Set a temporary password (generated when none is given); sessions end.")
    async def reset_password(
        self, info: Info, user_id: strawberry.ID, new_password: str | None = None
    ) -> ResetPasswordPayload:
        row, password = await user_resolvers.reset_password(info.context, decode_id("User", user_id), new_password)
        return ResetPasswordPayload(user=UserType.from_row(row), temporary_password=password)

    @strawberry.mutation(description="Replace a user's roles. You may assign only roles within your own reach.")
    async def assign_roles(self, info: Info, user_id: strawberry.ID, role_keys: list[str]) -> UserType:
        row = await user_resolvers.assign_roles(info.context, decode_id("User", user_id), role_keys)
        return UserType.from_row(row)
