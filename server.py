"""The ASGI app: `create_app` (what uvicorn serves through `app_factory`) and the checks it starts with.

`python server.py <command>` is the operator's command line, kept in cli.py (`python server.py --help`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route

from core import gctune, logredact, speedups
from core.crypto import configure as configure_cipher
from core.db import Database
from core.settings import Settings, get_settings
from policies.ownership import unclassified as ownership_problems
from policies.store import PolicyStore
from policies.tables import check_tables
from resolvers.audit.chain import Sealer
from resolvers.audit.unit import PRINCIPALS_CHANNEL
from resolvers.data.context import Services
from resolvers.data.figures import RequestFigures
from resolvers.data.notify import Notifier
from resolvers.data.principal import SESSIONS_CHANNEL
from resolvers.data.sessioncache import SessionCache
from resolvers.data.tree import DEPARTMENTS_CHANNEL, DepartmentTree
from resolvers.demo.seed import has_demo_accounts
from resolvers.operations.caches import CacheCatalogue
from resolvers.operations.monitor import Monitor
from resolvers.operations.scheduler import Scheduler
from resolvers.role import POLICY_CHANNEL
from schema.engine.admission import Admission, AdmissionMiddleware
from schema.engine.builder import SchemaRegistry
from schema.engine.caches import register_caches
from schema.engine.console import console_routes
from schema.engine.endpoint import GraphQLEndpoint
from schema.engine.fhir import fhir_routes
from schema.engine.graphiql import ASSETS_DIR, ASSETS_URL, StaticAssets
from schema.engine.metrics import MetricsMiddleware, metrics_endpoint
from schema.engine.probes import probe_routes
from schema.engine.shutdown import GracefulShutdown
from schema.engine.websocket import subscription_route
from schema.root import Mutation, Query, Subscription

log = logging.getLogger("followup")
ROOT = Path(__file__).resolve().parent


class StartupRefused(RuntimeError):
    """The server will not start in this configuration."""


async def check_startup(services: Services, coordinates: set[str]) -> None:
    unknown = services.policy.unknown_coordinates(coordinates)
    if unknown:
        raise StartupRefused("policy lines name no schema coordinate or capability: " + "; ".join(unknown[:10]))
    undeclared = check_tables()
    if undeclared:
        raise StartupRefused("tables with no reach declared in policies/tables.py: " + ", ".join(undeclared))
    unowned = ownership_problems()
    if unowned:
        raise StartupRefused("; ".join(unowned))
    if services.settings.app_mode == "production" and await has_demo_accounts(services.db):
        raise StartupRefused("production mode refuses to start while demo accounts exist")


def create_app(settings: Settings | None = None, *, handle_sigterm: bool = False) -> Starlette:
    """The app; `handle_sigterm` (the served app: `app_factory`) takes SIGTERM over for a graceful shutdown."""
    settings = settings or get_settings()
    logredact.install(logredact.settings_secrets(settings))  # before anything can log
    configure_cipher(settings.data_keys, settings.search_hash_key.get_secret_value())
    speedups.configure(
        projection=settings.projection, prefetch=settings.prefetch, statement_reuse=settings.statement_reuse
    )
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        ping_idle_seconds=settings.database_ping_idle_seconds,
        statement_cache=settings.database_statement_cache,
        pool_timeout=settings.database_pool_timeout_seconds,
    )
    policy = PolicyStore(db)
    notifier = Notifier(settings.redis_url)
    services = Services(settings=settings, db=db, policy=policy, notifier=notifier)
    registry = SchemaRegistry(
        query=Query, mutation=Mutation, subscription=Subscription, policy=policy, settings=settings
    )
    services.coordinates = frozenset(registry.coordinates)
    services.registry = registry
    notifier.subscribe(POLICY_CHANNEL, policy.load)
    services.sessions = sessions = SessionCache(settings.session_cache_seconds)
    for channel in (PRINCIPALS_CHANNEL, SESSIONS_CHANNEL, POLICY_CHANNEL):
        notifier.subscribe(channel, sessions.cleared)
    department_tree = DepartmentTree()
    services.department_tree = department_tree
    notifier.subscribe(DEPARTMENTS_CHANNEL, department_tree.drop)
    sealer = Sealer(db, interval=settings.audit_seal_interval_seconds)
    services.sealer = sealer
    services.monitor = monitor = Monitor()
    figures = RequestFigures(db, instance=notifier.instance, flush_seconds=settings.figures_flush_seconds)
    services.figures = figures
    services.scheduler = scheduler = Scheduler(services)
    services.caches = CacheCatalogue(notifier)
    services.admission = admission = Admission(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        try:
            await policy.load()
            await check_startup(services, registry.coordinates)
        except BaseException:
            await db.dispose()  # a refused start leaves no pooled connection behind
            raise
        await notifier.start()
        await sealer.start()
        await monitor.start()
        await figures.start()
        await scheduler.start()
        graceful = GracefulShutdown(admission, settings)
        if handle_sigterm:
            graceful.install()
        try:
            with gctune.tuned(freeze=settings.gc_freeze, threshold0=settings.gc_threshold0):
                yield {"admission": admission}  # lifespan state: the HTTP protocol reads it (engine/door.py)
        finally:
            graceful.uninstall()
            await scheduler.stop()
            await figures.stop()
            await monitor.stop()
            await endpoint.close()
            await sealer.stop()
            await notifier.stop()
            message_broker = services.message_broker
            if message_broker is not None:  # the consultation fan-out, started on first use
                await message_broker.stop()
            await db.dispose()

    async def index(_request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    endpoint = GraphQLEndpoint(services, registry)
    routes: list[BaseRoute] = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),  # first: most matched
        Route("/", index),
        subscription_route(services, registry, Subscription),  # graphql-transport-ws on the same path
        *probe_routes(services),
        *fhir_routes(services),  # FHIR bulk data export
        Route("/metrics", metrics_endpoint),
        *console_routes(),  # the admin console's build (console/dist) at /admin/
    ]
    if settings.graphiql_enabled:  # GraphiQL's own assets, shipped in the repository (no CDN)
        routes.append(Mount(ASSETS_URL, app=StaticAssets(directory=ASSETS_DIR), name="graphiql-assets"))
    middleware = [Middleware(MetricsMiddleware)]
    if settings.cors_origins:  # the console's origins; tokens travel in a header, so no credentials
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-Id"],
                expose_headers=["X-Request-Id", "Retry-After"],
                allow_credentials=False,
                max_age=600,
            )
        )
    middleware.append(Middleware(AdmissionMiddleware, admission=admission))  # inside CORS: a 503 keeps its headers
    register_caches(services.caches, services)  # once the endpoint's and the websocket's caches exist
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.services = services
    return app


def app_factory() -> Starlette:
    """What uvicorn loads (`server:app_factory`, factory mode)."""
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(handle_sigterm=True)


if __name__ == "__main__":  # the operator's command line: cli.py
    from cli import main

    main()
