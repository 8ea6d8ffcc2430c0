"""Online sessions over the API, and ending one at once (forceLogout)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from core.ids import decode_key, decode_optional_id, encode_id
from models.auth import AuthSession
from resolvers.data.context import Info
from resolvers.operations import sessions
from schema.engine.connection import Connection, connection


@strawberry.enum(name="SessionClient")
class SessionClient(Enum):
    CONSOLE = "console"
    GRAPHIQL = "graphiql"
    MINI_PROGRAM = "mini-program"


@strawberry.type(name="OnlineSession")
class OnlineSessionType:
    id: strawberry.ID
    user_id: strawberry.ID
    client: SessionClient
    ip: str
    user_agent: str
    logged_in_at: datetime
    last_seen_at: datetime = strawberry.field(description="Marked at most once a minute")
    expires_at: datetime
    ended_at: datetime | None = strawberry.field(description="Set once forceLogout (or logout) ended it")
    _user_id: strawberry.Private[int]

    @strawberry.field
    async def user_name(self, info: Info) -> str | None:
        return await info.context.loaders.user_name_by_id.load(self._user_id)

    @strawberry.field(description="The account's roles now")
    async def roles(self, info: Info) -> list[str]:
        return [role.key for role in await info.context.loaders.roles_by_user_id.load(self._user_id)]

    @classmethod
    def from_row(cls, row: AuthSession) -> OnlineSessionType:
        client = {item.value: item for item in SessionClient}.get(row.client, SessionClient.CONSOLE)
        return cls(
            id=strawberry.ID(encode_id("OnlineSession", row.id)),
            user_id=strawberry.ID(encode_id("User", row.user_id)),
            client=client,
            ip=row.ip,
            user_agent=row.user_agent,
            logged_in_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            ended_at=row.revoked_at,
            _user_id=row.user_id,
        )


@strawberry.input
class OnlineSessionFilter:
    user_id: strawberry.ID | None = None
    client: SessionClient | None = None
    search: str | None = strawberry.field(default=None, description="Part of the username or display name")


@strawberry.type
class SessionsQuery:
    @strawberry.field(description="Sessions in use now (not ended, used within SESSION_IDLE_MINUTES).")
    async def online_sessions(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: OnlineSessionFilter | None = None
    ) -> Connection[OnlineSessionType]:
        f = filter or OnlineSessionFilter()
        filters = sessions.SessionFilter(
            user_id=decode_optional_id("User", f.user_id),
            client=f.client.value if f.client is not None else None,
            search=f.search,
        )
        page = await sessions.online_sessions(info.context, first=first, after=after, filters=filters)
        return connection(page, OnlineSessionType.from_row)


@strawberry.type
class SessionsMutation:
    @strawberry.mutation(
        description="End a session at once, on every instance: its next request fails, its websockets close."
    )
    async def force_logout(self, info: Info, session_id: strawberry.ID, reason: str) -> OnlineSessionType:
        row = await sessions.force_logout(
            info.context, session_id=decode_key("OnlineSession", session_id), reason=reason
        )
        return OnlineSessionType.from_row(row)
