"""Prometheus metrics (text exposition format) for the API: requests, latency, prepared documents.

Served at /metrics to an admin's token or to a configured internal network only. Each worker
process keeps its own counters; scrape every worker (or run one worker per container).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AppError
from policies.capabilities import Capability
from resolvers.data.context import Services
from resolvers.data.principal import principal_from_token
from schema.engine.endpoint import _in, client_ip

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "followup_http_requests_total", "HTTP requests by route and status code", ["route", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "followup_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
SCHEMAS = Gauge("followup_role_schemas", "Role schemas currently built", registry=REGISTRY)


class MetricsMiddleware:
    """Counts and times every HTTP request by route (the path of a known route, else 'other')."""

    ROUTES = ("/graphql", "/healthz", "/readyz", "/metrics")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in self.ROUTES else ("/static" if path.startswith("/static/") else "other")
        status = {"code": 500}
        started = time.perf_counter()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            REQUESTS.labels(route=route, status=str(status["code"])).inc()
            LATENCY.labels(route=route).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    if not await _allowed(request, services):
        return PlainTextResponse("forbidden", status_code=403)
    registry = services.registry
    if registry is not None:
        SCHEMAS.set(registry.built_count())
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


async def _allowed(request: Request, services: Services) -> bool:
    if _in(client_ip(request, services), services.settings.metrics_networks_parsed):
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        principal: Any = await principal_from_token(services, token.strip())
    except AppError:
        return False
    return Capability.METRICS_READ in services.policy.capabilities(principal.schema_roles)
