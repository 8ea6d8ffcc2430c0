"""The GraphQL-over-HTTP endpoint: authentication, role dispatch, content negotiation, status codes.

POST (application/json) runs queries and mutations; GET runs queries only. The response is
`application/graphql-response+json` when the client accepts it (then parse and validation
failures are 400) and `application/json` otherwise. A bad token is 401 `UNAUTHENTICATED`: never a
silent fall-back to the anonymous schema.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from core.db import unreachable
from core.errors import AppError, ErrorCode
from resolvers.data.context import ANONYMOUS_PRINCIPAL, Context, Services
from resolvers.data.figures import operation_label
from resolvers.data.principal import principal_from_token
from schema.engine.builder import SchemaRegistry
from schema.engine.errors import (
    PRE_EXECUTION,
    UNAVAILABLE_MESSAGE,
    format_error,
    hint_unavailable,
    request_error,
)
from schema.engine.figures import OperationNames, first_error_code, response_error_code
from schema.engine.graphiql import graphiql_page
from schema.engine.multipart import MULTIPART, body_limit, read_multipart
from schema.engine.persisted import PersistedQueries, Refused
from schema.engine.ratelimit import RateLimiter
from schema.engine.sizes import document_too_long

log = logging.getLogger("followup.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def client_ip(request: Request, services: Services) -> str:
    peer = request.client.host if request.client else ""
    networks = services.settings.trusted_networks
    if not networks or not _in(peer, networks):
        return peer
    # Walk X-Forwarded-For from the right, skipping our own proxies: the first other hop is the client.
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop
    return hops[0] if hops else peer


def _in(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    # 32 random hex digits (uuid4().hex's form, without making a UUID object)
    return given if given.isascii() and given.isprintable() and 0 < len(given) <= 64 else os.urandom(16).hex()


_MEDIA_TYPES: dict[str, str | None] = {}  # Accept header -> negotiated type (clients send a handful of values)
_MEDIA_TYPES_KEPT = 256


def _media_type(request: Request) -> str | None:
    accept = request.headers.get("accept", "")
    try:
        return _MEDIA_TYPES[accept]
    except KeyError:
        pass
    negotiated = _negotiate(accept)
    if len(accept) <= 512:
        if len(_MEDIA_TYPES) >= _MEDIA_TYPES_KEPT:
            _MEDIA_TYPES.clear()
        _MEDIA_TYPES[accept] = negotiated
    return negotiated


def _negotiate(accept: str) -> str | None:
    """Content negotiation over the two GraphQL response types, honouring q-values (q=0: refused)."""
    if not accept.strip():
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kind.lower()
        if kind:
            weights[kind] = max(weights.get(kind, 0.0), quality) if kind in weights else quality

    def weight(media: str) -> float:
        for candidate in (media, "application/*", "*/*"):
            if candidate in weights:
                return weights[candidate]
        return 0.0

    graphql_weight, json_weight = weight(GRAPHQL_RESPONSE), weight(JSON)
    if graphql_weight <= 0 and json_weight <= 0:
        return None
    if graphql_weight > 0 and GRAPHQL_RESPONSE in weights and graphql_weight >= json_weight:
        return GRAPHQL_RESPONSE
    return JSON if json_weight > 0 else GRAPHQL_RESPONSE


def _respond(
    body: Any, *, status: int, media_type: str, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    response = Response(orjson.dumps(body), status_code=status, media_type=media_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Request-Id"] = request_id
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _failed(error: Exception, request_id: str) -> Response:
    """An exception no layer below answered: 503 UNAVAILABLE when the database or Redis is unreachable, else 500
    INTERNAL (logged with the request id); both with a code, as every other error."""
    if isinstance(error, ClientDisconnect):
        # the client closed its connection before its request had arrived: nothing ran, nobody reads this answer
        log.info("request %s: the client went away before its request arrived", request_id)
        body = request_error(ErrorCode.BAD_USER_INPUT, "The connection closed before the request arrived")
        return _respond(body, status=400, media_type=JSON, request_id=request_id)
    if unreachable(error):
        log.warning("request %s: unavailable (%s)", request_id, type(error).__name__)
        body = request_error(ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, requestId=request_id, retryAfter=1)
        return _respond(body, status=503, media_type=JSON, request_id=request_id, headers={"Retry-After": "1"})
    log.error("unexpected error (request %s)", request_id, exc_info=error)
    body = request_error(ErrorCode.INTERNAL, "Internal server error", requestId=request_id)
    return _respond(body, status=500, media_type=JSON, request_id=request_id)


class GraphQLEndpoint:
    def __init__(self, services: Services, registry: SchemaRegistry) -> None:
        self.services = services
        self.registry = registry
        self.persisted = PersistedQueries(services.settings, services.db)
        services.persisted = self.persisted
        self.limiter = RateLimiter(services.settings)
        services.ratelimiter = self.limiter
        self._names = OperationNames()

    async def close(self) -> None:
        await self.persisted.close()
        await self.limiter.close()

    async def handle(self, request: Request) -> Response:
        contexts: list[Context] = []
        started = time.perf_counter()
        try:
            response = await self._handle(request, contexts)
        except Exception as error:  # outside execution (the token's session, a rate limit): never a bare 500
            response = _failed(error, contexts[0].request_id if contexts else _request_id(request))
        finally:
            for context in contexts:
                await context.release()
        if response.status_code >= 400 and contexts and not any(c.state.counted for c in contexts):
            # refused before any operation ran (a bad token, a rate limit, a body too large): counted as `other`
            self._count(contexts[0], response_error_code(response.body), time.perf_counter() - started)
        return response

    def _count(self, context: Context, code: str, seconds: float) -> None:
        """The request's figures, in memory (written in the background: resolvers/data/figures.py)."""
        figures = self.services.figures
        if figures is None:
            return
        context.state.counted = True
        name = context.state.operation_name if context.state.executed else None
        figures.record(operation=operation_label(name), principal=context.principal, code=code, seconds=seconds)

    async def _handle(self, request: Request, contexts: list[Context]) -> Response:
        context = Context(
            services=self.services,
            principal=ANONYMOUS_PRINCIPAL,
            ip=client_ip(request, self.services),
            user_agent=request.headers.get("user-agent", "")[:255],
            request_id=_request_id(request),
        )
        context.pin_connection()
        context.state.graphiql = request.headers.get("x-followup-client") == "graphiql"
        contexts.append(context)
        rid = context.request_id
        if request.method == "GET" and self._wants_ide(request) and self.services.settings.graphiql_enabled:
            return graphiql_page().response()  # a browser asking for the page (Accept: text/html alone too)
        media_type = _media_type(request)
        if media_type is None:
            return _respond(
                request_error(ErrorCode.BAD_USER_INPUT, "Accept application/graphql-response+json or application/json"),
                status=406,
                media_type=JSON,
                request_id=rid,
            )

        def fail(
            code: ErrorCode, message: str, status: int, extensions: dict[str, Any] | None = None, **headers: str
        ) -> Response:
            body = request_error(code, message, **(extensions or {}))
            return _respond(body, status=status, media_type=media_type, request_id=rid, headers=headers)

        if request.method == "GET" and self._wants_ide(request):
            if not self.services.settings.graphiql_enabled:
                return fail(ErrorCode.NOT_FOUND, "GraphiQL is switched off", 404)
            return graphiql_page().response()
        if request.method not in ("GET", "POST"):
            return fail(ErrorCode.BAD_USER_INPUT, "GraphQL takes GET and POST only", 405, Allow="GET, POST")

        parsed = await self._read(request)
        if isinstance(parsed, tuple):
            code, message, status = parsed
            return fail(code, message, status)

        settings = self.services.settings
        operations = len(parsed) if isinstance(parsed, list) else 1
        retry = await self.limiter.hit("ip", context.ip, settings.rate_limit_per_ip, operations)
        if retry:
            return self._rate_limited(retry, media_type, rid)

        authorization = request.headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return fail(
                    ErrorCode.UNAUTHENTICATED,
                    "Use 'Authorization: Bearer <token>'",
                    401,
                    {"reason": "TOKEN_INVALID"},
                    **{"WWW-Authenticate": "Bearer"},
                )
            try:
                context.principal = await principal_from_token(
                    self.services, token.strip(), connection=context.connection, recent=True
                )
            except AppError as error:
                reason = {"reason": (error.extensions or {}).get("reason", "TOKEN_INVALID")}
                return fail(
                    error.code, error.message, 401, reason, **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
                )

        if context.principal.user_id is not None:
            retry = await self.limiter.hit(
                "user", str(context.principal.user_id), settings.rate_limit_per_user, operations
            )
            if retry:
                return self._rate_limited(retry, media_type, rid)

        if isinstance(parsed, list):
            if len(parsed) > self.services.settings.max_batch:
                return fail(
                    ErrorCode.QUERY_TOO_COMPLEX, f"At most {self.services.settings.max_batch} operations per batch", 400
                )
            results = []
            for item in parsed:
                item_context = Context(
                    services=self.services, principal=context.principal, ip=context.ip, user_agent=context.user_agent
                )
                item_context.pin_connection()
                contexts.append(item_context)
                body, _status, _ = await self._execute_one(request, item, item_context)
                results.append(body)
            return _respond(results, status=200, media_type=media_type, request_id=rid)
        body, status, request_level = await self._execute_one(request, parsed, context)
        if media_type == JSON and not request_level:
            # Under application/json a well-formed request is 200 even when it fails validation.
            status = 200
        extra = {"Allow": "POST"} if status == 405 else None
        if status == 503:
            extra = {"Retry-After": "1"}
        if context.state.rate_limited:
            status, extra = 429, {"Retry-After": str(context.state.rate_limited)}
        return _respond(body, status=status, media_type=media_type, request_id=rid, headers=extra)

    @staticmethod
    def _rate_limited(retry: int, media_type: str, request_id: str) -> Response:
        body = request_error(
            ErrorCode.RATE_LIMITED, f"Too many requests; try again in {retry} seconds", retryAfter=retry
        )
        return _respond(
            body, status=429, media_type=media_type, request_id=request_id, headers={"Retry-After": str(retry)}
        )

    @staticmethod
    def _wants_ide(request: Request) -> bool:
        return "text/html" in request.headers.get("accept", "") and "query" not in request.query_params

    async def _read(self, request: Request) -> dict[str, Any] | list[Any] | tuple[ErrorCode, str, int]:
        limit = self.services.settings.max_request_bytes
        if request.method == "GET":
            params = request.query_params
            data: dict[str, Any] = {"query": params.get("query"), "operationName": params.get("operationName")}
            for key in ("variables", "extensions"):
                if params.get(key):
                    try:
                        data[key] = orjson.loads(params[key])
                    except orjson.JSONDecodeError:
                        return (ErrorCode.BAD_USER_INPUT, f"'{key}' is not valid JSON", 400)
            return self._check_shape(data)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == MULTIPART:  # a file upload (schema/engine/multipart.py)
            limit = body_limit(self.services.settings.schedule_import_max_bytes)
        elif content_type != JSON:
            return (ErrorCode.BAD_USER_INPUT, "Send the request as application/json", 415)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return (ErrorCode.QUERY_TOO_COMPLEX, f"Request body larger than {limit} bytes", 413)
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > limit:
                return (ErrorCode.QUERY_TOO_COMPLEX, f"Request body larger than {limit} bytes", 413)
        if content_type == MULTIPART:
            operations = await read_multipart(request, bytes(raw))
            return operations if isinstance(operations, tuple) else self._check_shape(operations)
        try:
            payload = orjson.loads(bytes(raw))
        except orjson.JSONDecodeError:
            return (ErrorCode.BAD_USER_INPUT, "The request body is not valid JSON", 400)
        if isinstance(payload, list):
            if not payload:
                return (ErrorCode.BAD_USER_INPUT, "An empty batch", 400)
            checked = [self._check_shape(item) for item in payload]
            for item in checked:
                if isinstance(item, tuple):
                    return item
            return checked
        return self._check_shape(payload)

    @staticmethod
    def _check_shape(data: Any) -> dict[str, Any] | tuple[ErrorCode, str, int]:
        if not isinstance(data, dict):
            return (ErrorCode.BAD_USER_INPUT, "The request must be a JSON object", 400)
        query = data.get("query")
        if query is not None and not isinstance(query, str):
            return (ErrorCode.BAD_USER_INPUT, "'query' must be a string", 400)
        if not query and not (isinstance(data.get("extensions"), dict) and data["extensions"].get("persistedQuery")):
            return (ErrorCode.BAD_USER_INPUT, "No GraphQL query found in the request", 400)
        for key in ("variables", "extensions"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                return (ErrorCode.BAD_USER_INPUT, f"'{key}' must be an object", 400)
        if data.get("operationName") is not None and not isinstance(data["operationName"], str):
            return (ErrorCode.BAD_USER_INPUT, "'operationName' must be a string", 400)
        return data

    async def _execute_one(
        self, request: Request, data: dict[str, Any], context: Context
    ) -> tuple[dict[str, Any], int, bool]:
        started = time.perf_counter()
        body, status, request_level = await self._run_one(request, data, context)
        self._count(context, first_error_code(body), time.perf_counter() - started)
        return body, status, request_level

    async def _run_one(
        self, request: Request, data: dict[str, Any], context: Context
    ) -> tuple[dict[str, Any], int, bool]:
        """The response body, its status under graphql-response+json, and whether it is a request error."""
        principal = context.principal
        resolved = await self.persisted.resolve(data, principal)
        if isinstance(resolved, Refused):
            return request_error(resolved.code, resolved.message), resolved.status, resolved.request_level
        context.state.persisted_digest = resolved.digest
        if resolved.digest is not None:  # a document the server knows: its operation is counted by name
            context.state.operation_name = self._names.name(resolved.digest, resolved.query, data.get("operationName"))
        limit = self.services.settings.max_document_bytes
        if resolved.query is not None and document_too_long(resolved.query, limit):
            return request_error(ErrorCode.QUERY_TOO_COMPLEX, f"The document is longer than {limit} bytes"), 413, True
        schema = self.registry.for_roles(principal.schema_roles)
        allowed = {OperationType.QUERY} if request.method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        operation_name = data.get("operationName")
        try:
            result = await schema.execute(
                resolved.query,
                variable_values=data.get("variables"),
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=allowed,
                operation_extensions=data.get("extensions"),
            )
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                message = (
                    "Subscriptions run over a websocket: connect to this same /graphql path (ws:// or wss://) "
                    "with the graphql-transport-ws protocol and send the token in connection_init"
                )
                return request_error(ErrorCode.BAD_USER_INPUT, message), 400, True
            return request_error(ErrorCode.BAD_USER_INPUT, "Mutations need POST"), 405, True
        except CannotGetOperationTypeError:
            message = "Unknown or ambiguous operation; set operationName"
            return request_error(ErrorCode.GRAPHQL_VALIDATION_FAILED, message), 400, False
        except MissingQueryError:
            return request_error(ErrorCode.BAD_USER_INPUT, "No GraphQL query found in the request"), 400, True
        executed = context.state.executed
        if resolved.register and executed and resolved.query and resolved.digest:
            await self.persisted.automatic.put(resolved.digest, resolved.query)
        body: dict[str, Any] = {}
        status = 200
        if result.errors:
            errors = [format_error(error, executed=executed, request_id=context.request_id) for error in result.errors]
            if not executed:
                anonymous = not principal.is_authenticated
                coordinates = self.services.coordinates
                errors = [hint_unavailable(error, coordinates, anonymous=anonymous) for error in errors]
            body["errors"] = errors
            if not executed and all(e["extensions"]["code"] in PRE_EXECUTION for e in errors):
                status = 400
            elif result.data is None and all(
                e["extensions"]["code"] == ErrorCode.BAD_USER_INPUT.value and "path" not in e for e in errors
            ):
                # Variables that do not coerce: a request error, so the response has no `data` entry.
                return body, 400, False
            elif all(e["extensions"]["code"] == ErrorCode.UNAVAILABLE.value for e in errors):
                # The database or Redis is unreachable: 503 whatever the media type, so a balancer steers away, and
                # one that resends a 503 to another instance (deploy/balancer.py) repeats nothing: 503 means
                # nothing was kept. When something may have been (a write unit committed, or a commit lost its
                # connection), the errors say inDoubt and the status is 500, which no balancer resends.
                in_doubt = context.state.units_committed > 0 or any(e["extensions"].get("inDoubt") for e in errors)
                if in_doubt:
                    for formatted in errors:
                        formatted["extensions"]["inDoubt"] = True
                if executed:
                    body["data"] = result.data
                return body, 500 if in_doubt else 503, True
        if executed:
            body["data"] = result.data
        return body, status, False
