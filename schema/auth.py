"""Logging in and out, the current user, and what anyone may ask before logging in."""

from __future__ import annotations

import strawberry

from core.version import VERSION
from models.user import User
from resolvers import auth
from resolvers.data.context import Info
from schema.user import UserType


@strawberry.type
class ServerInfo:
    name: str
    version: str


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_in: int = strawberry.field(description="Seconds the access token lives.")
    user: UserType
    must_change_password: bool

    @classmethod
    def from_tokens(cls, tokens: auth.Tokens) -> AuthPayload:
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            user=UserType.from_row(tokens.user),
            must_change_password=tokens.user.must_change_password,
        )


@strawberry.type
class TotpEnrollment:
    secret: str
    otpauth_uri: str = strawberry.field(description="Show as a QR code for an authenticator app.")


@strawberry.input
class CompleteProfileInput:
    display_name: str
    phone: str | None = None
    console_username: str | None = strawberry.field(
        default=None,
        description="Staff: ask for a console account; it has no permissions until an admin assigns roles.",
    )
    console_password: str | None = None


async def _me(info: Info) -> User:
    return await auth.current_user(info.context)


@strawberry.type
class AuthQuery:
    @strawberry.field
    def server_info(self, info: Info) -> ServerInfo:
        return ServerInfo(name=info.context.settings.app_name, version=VERSION)

    @strawberry.field(description="The logged-in user, with roles and department.")
    async def me(self, info: Info) -> UserType:
        return UserType.from_row(await _me(info))


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Log in with a console username and password (and a one-time code if enrolled).")
    async def login(self, info: Info, username: str, password: str, totp: str | None = None) -> AuthPayload:
        tokens = await auth.login(info.context, username=username, password=password, totp=totp)
        return AuthPayload.from_tokens(tokens)

    @strawberry.mutation(description="Trade a refresh token for new tokens. Each refresh token works once.")
    async def refresh_token(self, info: Info, token: str) -> AuthPayload:
        return AuthPayload.from_tokens(await auth.refresh(info.context, token=token))

    @strawberry.mutation(description="Mini-program login: exchange a wx.login() code for tokens.")
    async def wechat_login(self, info: Info, code: str) -> AuthPayload:
        return AuthPayload.from_tokens(await auth.wechat_login(info.context, code=code))

    @strawberry.mutation(description="End this session; its tokens stop working at once.")
    async def logout(self, info: Info) -> bool:
        return await auth.logout(info.context)

    @strawberry.mutation
    async def change_password(self, info: Info, old_password: str, new_password: str) -> UserType:
        row = await auth.change_password(info.context, old_password=old_password, new_password=new_password)
        return UserType.from_row(row)

    @strawberry.mutation
    async def complete_profile(self, info: Info, input: CompleteProfileInput) -> UserType:
        data = auth.ProfileInput(
            display_name=input.display_name,
            phone=input.phone,
            console_username=input.console_username,
            console_password=input.console_password,
        )
        return UserType.from_row(await auth.complete_profile(info.context, data))

    @strawberry.mutation(description="Start two-factor enrolment; confirm with a code from the app.")
    async def enroll_totp(self, info: Info) -> TotpEnrollment:
        enrollment = await auth.enroll_totp(info.context)
        return TotpEnrollment(secret=enrollment.secret, otpauth_uri=enrollment.uri)

    @strawberry.mutation
    async def confirm_totp(self, info: Info, code: str) -> UserType:
        return UserType.from_row(await auth.confirm_totp(info.context, code=code))

    @strawberry.mutation
    async def disable_totp(self, info: Info, password: str) -> UserType:
        return UserType.from_row(await auth.disable_totp(info.context, password=password))
