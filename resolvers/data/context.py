"""Who is asking (Principal), the app's services, and the per-request execution context."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from strawberry.types import Info as StrawberryInfo

from core.db import Database, RequestConnection
from core.settings import Settings
from models.role import DataScope
from policies.store import ANONYMOUS, AUTHENTICATED, PolicyStore

if TYPE_CHECKING:
    from resolvers.data.loaders import Loaders
    from resolvers.data.notify import Notifier


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    session_id: str | None = None
    username: str | None = None
    role_keys: tuple[str, ...] = ()
    department_id: int | None = None
    data_scope: DataScope = DataScope.SELF
    client: str = "console"
    # Set when the account must first change its password or enrol TOTP: its roles are withheld.
    restricted_reason: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def schema_roles(self) -> frozenset[str]:
        """The role set whose schema this principal gets (pseudo-roles included)."""
        if not self.is_authenticated:
            return frozenset({ANONYMOUS})
        if self.restricted_reason:
            return frozenset({AUTHENTICATED})
        return frozenset({AUTHENTICATED, *self.role_keys})


ANONYMOUS_PRINCIPAL = Principal()


@dataclass
class Services:
    """Long-lived, shared by every request of one app instance."""

    settings: Settings
    db: Database
    policy: PolicyStore
    notifier: Notifier
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    services: Services
    principal: Principal
    ip: str = ""
    user_agent: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Per-request memo (department tree, permission sets): nothing cached here crosses requests.
    memo: dict[str, Any] = field(default_factory=dict)
    _loaders: Loaders | None = None
    # Set by the HTTP endpoint, which releases it when the response is ready (see `reads`).
    _connection: RequestConnection | None = None

    def pin_connection(self) -> None:
        """Serve this request's reads from one connection (an HTTP request: short and bounded)."""
        if self._connection is None:
            self._connection = RequestConnection(self.services.db)

    async def release(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def reads(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for reads and single-statement writes that need no transaction of their own.

        Within an HTTP request: the request's one autocommit connection. Elsewhere (a websocket that
        lives for hours, the command line): a session of its own per use, as `db.session()`.
        """
        if self._connection is not None:
            return self._connection.session()
        return self.services.db.session()

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """The same, as a Core connection (autocommit): for statements that select columns, not ORM
        objects, and single-statement writes. No ORM session is set up for them (measured: ~12% of a
        patient page's CPU went to creating sessions, their identity maps and transaction snapshots)."""
        if self._connection is not None:
            return self._connection.connection()
        return self.services.db.connection()

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from resolvers.data.loaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders


Info = StrawberryInfo[Context, None]
