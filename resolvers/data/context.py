"""The app's long-lived services and the per-request execution context.

Connections, one rule: a request reads through its one connection (autocommit, taken on first use and
given back when the response is ready; outside an HTTP request, a connection per use), and writes through
write units (`ctx.data.write(...)`: a transaction of their own that ends with the write's audit event).
Both are reached only through the repository, `ctx.data` (resolvers/data/repository.py).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from strawberry.types import Info as StrawberryInfo

from core.db import Database, RequestConnection
from core.settings import Settings
from core.speedups import SPEEDUPS
from core.timeutil import clinic_today
from policies.access import ANONYMOUS_PRINCIPAL, Access, Principal
from policies.store import PolicyStore
from resolvers.data.loaders import Loaders
from resolvers.data.repository import Data
from resolvers.data.tree import access_for

if TYPE_CHECKING:
    from resolvers.data.figures import RequestFigures
    from resolvers.data.notify import Notifier
    from resolvers.data.sessioncache import SessionCache
    from resolvers.data.tree import DepartmentTree
    from resolvers.operations.caches import CacheCatalogue
    from resolvers.operations.monitor import Monitor
    from resolvers.operations.scheduler import Scheduler

__all__ = ["ANONYMOUS_PRINCIPAL", "Context", "Info", "Principal", "RequestState", "Services"]

L = TypeVar("L")


@dataclass
class Services:
    """Long-lived, shared by every request of one app instance."""

    settings: Settings
    db: Database
    policy: PolicyStore
    notifier: Notifier
    department_tree: DepartmentTree | None = None
    coordinates: frozenset[str] = frozenset()  # every schema coordinate a policy line may name
    # Set by the layers above (typed there): the schema registry, the audit sealer, persisted documents,
    # the rate limiter, the websocket schemas, the consultation fan-out.
    registry: Any = None
    sealer: Any = None
    persisted: Any = None
    ratelimiter: Any = None
    socket_schemas: Any = None
    message_broker: Any = None
    admission: Any = None  # requests in flight, shedding, shutdown (schema/engine/admission.py)
    # Operations (resolvers/operations/): the job scheduler, request figures, process figures, the caches' list.
    scheduler: Scheduler | None = None
    figures: RequestFigures | None = None
    monitor: Monitor | None = None
    caches: CacheCatalogue | None = None
    sessions: SessionCache | None = None  # sessions verified a moment ago (resolvers/data/sessioncache.py)


@dataclass
class RequestState:
    """What the HTTP layer notes about a request while it runs."""

    executed: bool = False
    rate_limited: int | None = None  # seconds until the window ends
    persisted_digest: str | None = None
    prepared_hit: bool = False
    operation_name: str | None = None  # of a document the server knows (trusted or persisted), for the figures
    counted: bool = False  # the request's figures are recorded
    graphiql: bool = False  # sent from the GraphiQL page (its login marks the session's client so)
    units_committed: int = 0  # write units committed (a mutation that lost a race runs again only while none has)
    lost_races: int = 0  # runs of a mutation that lost to a concurrent write and were run again
    # the root mutation fields run so far, in order (resolvers/audit/oplog.py MutationCall): the operation log's
    calls: list[Any] = field(default_factory=list)


@dataclass
class Context:
    services: Services
    principal: Principal
    ip: str = ""
    user_agent: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: RequestState = field(default_factory=RequestState)
    _access: Access | None = None
    _loaders: Loaders | None = None
    _domain_loaders: dict[type, Any] = field(default_factory=dict)
    _data: Data | None = None
    # Set by the HTTP endpoint, which releases it when the response is ready.
    _connection: RequestConnection | None = None

    def pin_connection(self) -> None:
        """Serve this request's reads from one connection (an HTTP request: short and bounded)."""
        if self._connection is None:
            self._connection = RequestConnection(self.services.db)

    async def release(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    # The two ways to the database below are the data layer's (resolvers/data/, resolvers/audit/): domain
    # code goes through `ctx.data`, and tests/test_layers.py refuses anything else.

    def reads(self) -> AbstractAsyncContextManager[AsyncSession]:
        """An ORM session on the request's connection (or of its own outside a request)."""
        if self._connection is not None:
            return self._connection.session()
        return self.services.db.session()

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """The request's Core connection (autocommit), or one of its own outside a request: for statements
        that select columns, not ORM objects (no session, identity map or snapshot to set up)."""
        if self._connection is not None:
            return self._connection.connection()
        return self.services.db.connection()

    @property
    def direct(self) -> bool:
        """Statements of this request may run through the driver itself (`driver_execute`)."""
        return self._connection is not None and self.services.db.direct and SPEEDUPS.statement_reuse

    async def driver_execute(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, list[Any]] | None:
        """The driver's SQL on the request's connection (core/db.py RequestConnection.driver_execute), or None
        where that is not available (outside a request, not a MySQL driver)."""
        if self._connection is None:
            return None
        return await self._connection.driver_execute(sql, args)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def db(self) -> Database:
        """The engine: the data layer's (resolvers/data/, resolvers/audit/) and system code's, not domain code's."""
        return self.services.db

    def today(self) -> date:
        """Today in the clinic's zone."""
        return clinic_today(self.services.settings.clinic_tz)

    @property
    def data(self) -> Data:
        """The caller's scoped repository."""
        if self._data is None:
            self._data = Data(self)
        return self._data

    async def access(self) -> Access:
        """What this principal may reach, decided once per request (again after `forget_access`)."""
        if self._access is None:
            self._access = await access_for(self)
        return self._access

    def forget_access(self) -> None:
        """After a change that widens or narrows this request's reach (an emergency grant)."""
        self._access = None

    async def refresh(self) -> None:
        """Decide again who the caller is and what they reach, as of now, with no loader's cached answer.

        A subscription calls it before each delivery (and then reloads what it delivers from through
        `ctx.data`): a socket lives for hours, and a scope that held when it subscribed may not hold any
        more (a chief moved to another department, a patient reassigned). The websocket's context also
        checks the session and the roles again (schema/engine/websocket.py)."""
        self._access = None
        self._loaders = None
        self._domain_loaders = {}

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self)
        return self._loaders

    def loaders_of(self, kind: type[L]) -> L:
        """A domain's loaders (a class taking the context), made once per request."""
        found = self._domain_loaders.get(kind)
        if found is None:
            found = self._domain_loaders[kind] = kind(self)  # type: ignore[call-arg]
        return found  # type: ignore[no-any-return]


Info = StrawberryInfo[Context, None]
