"""Subscriptions over graphql-transport-ws at /graphql (a WebSocketRoute beside the HTTP route).

Strawberry's websocket handler is given one schema when the socket opens, before `connection_init`
says who the user is. So the view gets a dispatching schema: each operation runs on the schema of the
principal found from the token in `connection_init` (a role schema with the policy-filtered
Subscription type, built once per role set and dropped when the policy changes).

The socket is subscriptions only (queries and mutations stay on HTTP, with its limits and persisted
documents); a mini-program token may subscribe only with one of its trusted documents, sent as text.
While open, the session and roles are checked again every few seconds, and at once when a session is ended
by someone else (forceLogout's notice, from any instance): a session that has ended, a change of roles, or a
policy that leaves the role set no subscription closes it with 4403. An instance that is stopping closes every
socket with 1001 (going away: schema/engine/admission.py), so clients reconnect to another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from core.errors import AppError, ErrorCode
from policies.access import Principal
from policies.decision import FieldDecision
from resolvers.data.context import ANONYMOUS_PRINCIPAL, Context, Services
from resolvers.data.principal import SESSIONS_CHANNEL, principal_from_token
from schema.engine.builder import DocumentLimits, RoleSchema, SchemaRegistry
from schema.engine.descriptions import describe
from schema.engine.errors import format_error
from schema.engine.sizes import document_too_long

log = logging.getLogger("followup.ws")


class SessionChecks:
    """The websockets' session look-ups of this process: shared by sockets of one session, and bounded.

    Every open socket checks its session every few seconds (the watcher) and as each message arrives; a message to
    a conversation a thousand sockets watch asks a thousand times at once, and so do the watchers of sockets opened
    together. Unbounded, those look-ups took every pooled connection and the ones left waiting past the pool's
    timeout failed (a subscription refused at subscribe time, a watcher's check lost). Here at most `at_once`
    run at a time and the others wait their turn, with no timeout of their own. A caller never takes an answer
    older than its question: it joins the next look-up of its token, one that has not begun yet (so its answer is
    the database's as of a moment after the question, as a look-up of its own would be), or begins that next one
    itself. Callers that ask while a look-up of their token runs share the one after it."""

    def __init__(self, services: Services, at_once: int) -> None:
        self.services = services
        self.gate = asyncio.Semaphore(max(1, at_once))
        self._next: dict[str, asyncio.Future[Principal]] = {}  # per token: the look-up not begun yet
        self.lookups = 0  # look-ups made (for the tests)

    async def principal(self, token: str) -> Principal:
        while True:
            upcoming = self._next.get(token)
            if upcoming is None:
                return await self._look_up(token)
            try:
                return await asyncio.shield(upcoming)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not upcoming.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the socket that was to make the look-up went away, not this caller: ask again

    async def _look_up(self, token: str) -> Principal:
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._next[token] = future
        try:
            async with self.gate:
                if self._next.get(token) is future:
                    del self._next[token]  # begun: later callers wait for the next one
                self.lookups += 1
                principal = await principal_from_token(self.services, token)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here: a look-up nobody joined leaves no "never retrieved" warning
            raise
        else:
            future.set_result(principal)
            return principal
        finally:
            if self._next.get(token) is future:
                del self._next[token]


class SocketRoleSchema(RoleSchema):
    """A role schema of Query (for types and introspection) and Subscription, without Mutation."""

    def __init__(
        self,
        *,
        query: type,
        subscription: type,
        decision: FieldDecision,
        roles: frozenset[str],
        extensions: Iterable[Any],
    ) -> None:
        self.roles = roles
        self.decision = decision
        self._has_fields = {}
        self._config = StrawberryConfig(auto_camel_case=True)
        visible = self._any_visible(subscription.__strawberry_definition__)  # type: ignore[attr-defined]
        strawberry.Schema.__init__(
            self,
            query=query,
            subscription=subscription if visible else None,
            extensions=tuple(extensions),
            config=self._config,
        )
        describe(self._schema)  # introspected over the socket too


class SocketSchemas:
    """One socket schema per role set, built on first use, dropped when the policy changes."""

    def __init__(self, services: Services, query: type, subscription: type) -> None:
        self.services = services
        self.query = query
        self.subscription = subscription
        self._schemas: dict[frozenset[str], SocketRoleSchema] = {}
        services.policy.on_change(self._schemas.clear)

    def for_roles(self, roles: frozenset[str]) -> SocketRoleSchema:
        schema = self._schemas.get(roles)
        if schema is None:
            schema = self._schemas[roles] = self._build(roles)
        return schema

    def _build(self, roles: frozenset[str]) -> SocketRoleSchema:
        settings = self.services.settings
        return SocketRoleSchema(
            query=self.query,
            subscription=self.subscription,
            decision=self.services.policy.decision(roles),
            roles=roles,
            extensions=[lambda: DocumentLimits(settings)],
        )


@dataclass
class SocketContext(Context):
    """One per connection: its loaders and memo serve every operation on it."""

    connection_params: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    websocket: WebSocket | None = None
    watcher: asyncio.Task[None] | None = None
    counted: int | None = None  # the user whose open sockets this one counts towards
    checks: SessionChecks | None = None  # the process's shared session look-ups

    async def refresh(self) -> None:
        """The session, roles, department and scope as they are now (not as when the socket opened): an
        ended session or changed roles end the delivery (the watcher then closes the socket)."""
        if self.token is not None:
            if self.checks is not None:
                current = await self.checks.principal(self.token)
            else:
                current = await principal_from_token(self.services, self.token)
            if current.schema_roles != self.principal.schema_roles:
                raise AppError(ErrorCode.FORBIDDEN, "Your roles changed: subscribe again")
            self.principal = current
        await super().refresh()


async def _coded(source: Any, request_id: str) -> AsyncGenerator[Any, None]:
    """The stream's errors as the HTTP endpoint gives them: each with `extensions.code`, anything unexpected
    masked (the log keeps it, with the request id)."""
    if not hasattr(source, "__aiter__"):
        source = _single(source)
    first = True
    async for result in source:
        errors = getattr(result, "errors", None)
        if errors:
            executed = not (first and isinstance(result, PreExecutionError))
            result.errors = [_with_code(error, executed=executed, request_id=request_id) for error in errors]
        first = False
        yield result


async def _single(result: Any) -> AsyncGenerator[Any, None]:
    yield result


def _with_code(error: GraphQLError, *, executed: bool, request_id: str) -> GraphQLError:
    formatted = format_error(error, executed=executed, request_id=request_id)
    if formatted["message"] == error.message:
        error.extensions = formatted["extensions"]  # the same error (a syntax error keeps closing the socket)
        return error
    return GraphQLError(
        formatted["message"],
        nodes=error.nodes,
        path=error.path,
        original_error=None,
        extensions=formatted["extensions"],
    )


async def _refused(code: ErrorCode, message: str) -> AsyncGenerator[Any, None]:
    yield PreExecutionError(data=None, errors=[AppError(code, message)])


class DispatchingSchema:
    """What strawberry's handler calls `stream` on: runs each operation on the caller's role schema."""

    def __init__(self, services: Services, schemas: SocketSchemas) -> None:
        self.services = services
        self.schemas = schemas

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        ctx = cast(SocketContext, context_value)
        principal = ctx.principal
        limit = self.services.settings.max_document_bytes
        if query is not None and document_too_long(query, limit):
            return _refused(ErrorCode.QUERY_TOO_COMPLEX, f"The document is longer than {limit} bytes")
        persisted = self.services.persisted
        if persisted is not None and query is not None:
            digest = hashlib.sha256(query.encode("utf-8")).hexdigest()
            if principal.trusted_documents_only:
                resolved = await persisted.resolve(
                    {"query": query, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}, principal
                )
                if getattr(resolved, "query", None) is None:
                    return _refused(ErrorCode.PERSISTED_QUERY_REQUIRED, "Subscribe with one of this client's documents")
        schema = self.schemas.for_roles(principal.schema_roles)
        source = await schema.stream(
            query,
            variable_values=variable_values,
            context_value=ctx,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )
        return _coded(source, ctx.request_id)

    async def subscribe(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        return await self.stream(query, *args, **kwargs)


class SubscriptionView(GraphQL):  # type: ignore[type-arg]
    # How often an open socket checks its session, roles and permission again.
    revalidate_seconds: float = 5.0

    def __init__(self, services: Services, query: type, subscription: type) -> None:
        self.services = services
        self.socket_schemas = SocketSchemas(services, query, subscription)
        # open sockets per user on this instance (MAX_SOCKETS_PER_USER)
        self._open: dict[int, int] = {}
        self._wakes: set[asyncio.Event] = set()  # one per open socket's watcher: "check your session now"
        # half the pool at most, like the consultation fan-out's deliveries (resolvers/consultation/broker.py)
        self.checks = SessionChecks(services, services.settings.database_pool_size // 2)
        services.notifier.subscribe(SESSIONS_CHANNEL, self._sessions_ended)
        services.socket_schemas = self.socket_schemas  # the subscription documents validate against it
        super().__init__(
            cast(Any, DispatchingSchema(services, self.socket_schemas)),
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=20,
            allowed_origins=tuple(services.settings.cors_origins),
        )

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if not isinstance(request, WebSocket):  # only mounted as a WebSocketRoute
            raise RuntimeError("the subscription view serves websockets only")
        ctx = SocketContext(
            services=self.services,
            principal=ANONYMOUS_PRINCIPAL,
            ip=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", "")[:255],
            websocket=request,
        )
        admission = self.services.admission
        if admission is not None and not admission.socket_opened(request):
            await request.close(code=1001, reason="server shutting down: reconnect")  # stopping: go elsewhere
            return None
        try:
            return await super().run(request, context=ctx, root_value=root_value)
        finally:
            if admission is not None:
                admission.socket_closed(request)
            if ctx.counted is not None:
                left = self._open.get(ctx.counted, 1) - 1
                if left > 0:
                    self._open[ctx.counted] = left
                else:
                    self._open.pop(ctx.counted, None)
            if ctx.watcher is not None:
                ctx.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ctx.watcher

    async def on_ws_connect(self, context: Any) -> Any:
        ctx = cast(SocketContext, context)
        params = ctx.connection_params or {}
        raw = params.get("authorization") or params.get("Authorization") or params.get("token") or ""
        token = raw.removeprefix("Bearer ").strip() if isinstance(raw, str) else ""
        if not token:
            raise ConnectionRejectionError()
        ctx.checks = self.checks
        try:
            ctx.principal = await self.checks.principal(token)
        except AppError as error:
            raise ConnectionRejectionError() from error
        if not self._may_subscribe(ctx.principal.schema_roles):
            raise ConnectionRejectionError()
        user_id = ctx.principal.user_id
        limit = self.services.settings.max_sockets_per_user
        if user_id is not None and self._open.get(user_id, 0) >= limit:
            raise ConnectionRejectionError({"code": "RATE_LIMITED", "message": f"At most {limit} open connections"})
        if user_id is not None:
            self._open[user_id] = self._open.get(user_id, 0) + 1
            ctx.counted = user_id
        ctx.token = token
        ctx.watcher = asyncio.create_task(self._watch(ctx))
        return UNSET

    def _may_subscribe(self, roles: frozenset[str]) -> bool:
        """Whether the role set's socket schema holds any subscription at all."""
        return self.socket_schemas.for_roles(roles)._schema.subscription_type is not None

    async def _sessions_ended(self) -> None:
        for wake in list(self._wakes):
            wake.set()

    async def _watch(self, ctx: SocketContext) -> None:
        wake = asyncio.Event()
        self._wakes.add(wake)
        try:
            await self._revalidate(ctx, wake)
        finally:
            self._wakes.discard(wake)

    async def _revalidate(self, ctx: SocketContext, wake: asyncio.Event) -> None:
        """Close the socket (4403) once the session ends, the roles, department or scope change, or the
        permission goes (each delivery also re-checks them itself: `SocketContext.refresh`)."""
        assert ctx.token is not None and ctx.websocket is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.revalidate_seconds)
            wake.clear()
            reason = None
            try:
                current = await self.checks.principal(ctx.token)
            except AppError:
                reason = "Session ended"
            except Exception:
                log.exception("could not re-check a websocket session")
                continue
            else:
                if current.schema_roles != ctx.principal.schema_roles:
                    reason = "Roles changed"
                elif not self._may_subscribe(current.schema_roles):
                    reason = "Permission revoked"
                elif (current.department_id, current.data_scope) != (
                    ctx.principal.department_id,
                    ctx.principal.data_scope,
                ):
                    reason = "Scope changed"  # what every subscription reaches may have changed: subscribe again
            if reason is not None:
                with contextlib.suppress(Exception):
                    await ctx.websocket.close(code=4403, reason=reason)
                return


def subscription_route(services: Services, registry: SchemaRegistry, subscription: type) -> WebSocketRoute:
    """The websocket route for /graphql (the Subscription's coordinates are the registry's already)."""
    return WebSocketRoute("/graphql", SubscriptionView(services, registry.query, subscription))
