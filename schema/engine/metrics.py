"""Prometheus metrics (text exposition format) for the API: requests, latency, prepared documents, and the
figures of the operations module: GraphQL operations (the same labels as serviceStats), connection pools,
scheduled jobs and caches.

Served at /metrics to an admin's token or to a configured internal network only. Each worker
process keeps its own counters; scrape every worker (or run one worker per container). Job figures are read
from the database at scrape time, so they are the same on every instance.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AppError
from models.operations import LATENCY_BUCKETS_MS
from policies.capabilities import Capability
from resolvers.data.context import Services
from resolvers.data.health import pool_figures
from resolvers.data.principal import principal_from_token
from resolvers.operations.runs import job_figures, system_context
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


class OperationsCollector:
    """The operations module's figures, gathered (awaiting the database) just before each scrape is written."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def collect(self) -> list[Any]:
        return self.families

    async def gather(self, services: Services) -> None:
        families: list[Any] = []
        figures = services.figures
        if figures is not None:
            requests = CounterMetricFamily(
                "followup_graphql_operations", "GraphQL operations by name and error code", labels=["operation", "code"]
            )
            for (operation, code), count in sorted(figures.totals.items()):
                requests.add_metric([operation, code or "none"], count)
            latency = HistogramMetricFamily(
                "followup_graphql_operation_seconds", "GraphQL operation latency", labels=["operation"]
            )
            for operation, counts in sorted(figures.latency.items()):
                cumulative, buckets = 0, []
                for bound, count in zip([*LATENCY_BUCKETS_MS, None], counts, strict=True):
                    cumulative += count
                    buckets.append(("+Inf" if bound is None else str(bound / 1000), cumulative))
                latency.add_metric([operation], buckets, sum_value=figures.latency_sum.get(operation, 0.0))
            families += [requests, latency]
        pools = GaugeMetricFamily("followup_db_pool_connections", "Database pool connections", labels=["pool", "state"])
        for pool in pool_figures(services.db):
            for state in ("in_use", "idle", "waiting", "size"):
                pools.add_metric([pool.name, state], getattr(pool, state))
        families.append(pools)
        families += await _job_families(services)
        admission = services.admission
        if admission is not None:
            shed = CounterMetricFamily(
                "followup_requests_shed",
                "Requests answered 503 OVERLOADED, nothing of them run: by the HTTP protocol before they went in "
                "(door), or by the app after their wait or at the ceiling (app)",
                labels=["at"],
            )
            shed.add_metric(["door"], admission.refused_at_door)
            shed.add_metric(["app"], admission.shed - admission.refused_at_door)
            timed_out = CounterMetricFamily(
                "followup_requests_timed_out", "Requests stopped at REQUEST_TIMEOUT_SECONDS (504 TIMEOUT)"
            )
            timed_out.add_metric([], admission.timed_out)
            families += [shed, timed_out]
        if services.caches is not None:
            entries = GaugeMetricFamily("followup_cache_entries", "Entries per cache namespace", labels=["namespace"])
            size = GaugeMetricFamily(
                "followup_cache_bytes", "Estimated bytes per cache namespace", labels=["namespace"]
            )
            hits = CounterMetricFamily("followup_cache_hits", "Cache hits", labels=["namespace"])
            misses = CounterMetricFamily("followup_cache_misses", "Cache misses", labels=["namespace"])
            for item in await services.caches.figures():
                entries.add_metric([item.namespace], item.keys)
                if item.bytes is not None:
                    size.add_metric([item.namespace], item.bytes)
                if item.hits is not None and item.misses is not None:
                    hits.add_metric([item.namespace], item.hits)
                    misses.add_metric([item.namespace], item.misses)
            families += [entries, size, hits, misses]
        self.families = families


async def _job_families(services: Services) -> list[Any]:
    executions = CounterMetricFamily("followup_job_executions", "Runs started per job, on any instance", labels=["job"])
    runs = GaugeMetricFamily("followup_job_runs", "Kept runs per job and status", labels=["job", "status"])
    enabled = GaugeMetricFamily("followup_job_enabled", "1 while the job fires on schedule", labels=["job"])
    success = GaugeMetricFamily(
        "followup_job_last_success_timestamp_seconds", "Last successful run's end", labels=["job"]
    )
    for job in await job_figures(system_context(services, "metrics")):
        executions.add_metric([job.name], job.executions)
        enabled.add_metric([job.name], 1 if job.enabled else 0)
        for status, count in sorted(job.runs_by_status.items()):
            runs.add_metric([job.name, status], count)
        if job.last_success_at is not None:
            success.add_metric([job.name], job.last_success_at.timestamp())
    return [executions, runs, enabled, success]


OPERATIONS = OperationsCollector()
REGISTRY.register(OPERATIONS)  # type: ignore[arg-type]


ROUTES = ("/graphql", "/healthz", "/readyz", "/metrics")  # labelled by their own path


class MetricsMiddleware:
    """Counts and times every HTTP request by route (the path of a known route, else 'other')."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope.get("path", ""))
        status = {"code": 500}
        started = time.perf_counter()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            observe_request(route, status["code"], time.perf_counter() - started)


def route_of(path: str) -> str:
    """The route label of a request: the path of a known route, else '/static' or 'other'."""
    return path if path in ROUTES else ("/static" if path.startswith("/static/") else "other")


def observe_request(route: str, code: int, seconds: float) -> None:
    """One HTTP request answered: counted by route and status, timed by route (also for those the door refused,
    schema/engine/door.py, which never reach this middleware)."""
    children = _CHILDREN.get((route, code))
    if children is None:  # each label set's children, looked up once (prometheus_client's labels() is not free)
        children = _CHILDREN[(route, code)] = (
            REQUESTS.labels(route=route, status=str(code)),
            LATENCY.labels(route=route),
        )
    children[0].inc()
    children[1].observe(seconds)


_CHILDREN: dict[tuple[str, int], tuple[Any, Any]] = {}  # (route, status) -> (request counter, latency histogram)


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    if not await _allowed(request, services):
        return PlainTextResponse("forbidden", status_code=403)
    registry = services.registry
    if registry is not None:
        SCHEMAS.set(registry.built_count())
    await OPERATIONS.gather(services)  # no await between this and the text: a concurrent scrape cannot interleave
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
