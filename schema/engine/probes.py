"""The probes of an orchestrator: /healthz (the process answers) and /readyz (the database answers and its
migrations are at head; Redis answers when configured; the process is neither full of requests nor stopping:
schema/engine/admission.py). Readiness says why it is not ready."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from resolvers.data.context import Services
from resolvers.data.health import migration_revision, redis_round_trip

log = logging.getLogger("followup")
ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    """The revision `migrate` brings a database to (one head: tests/test_migrations.py keeps it so)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def probe_routes(services: Services) -> list[Route]:
    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> JSONResponse:
        admission = services.admission
        if admission is not None and admission.draining:  # SIGTERM: steer away before the port closes
            return JSONResponse({"status": "draining", "requests": "draining"}, status_code=503)
        checks: dict[str, str] = {}
        try:
            revision = await migration_revision(services.db)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if revision == migration_head() else "behind"
        except Exception:
            log.warning("readiness check: database unreachable")
            checks["database"] = "unreachable"
        if services.settings.redis_url:
            try:
                await redis_round_trip(services.settings.redis_url)
                checks["redis"] = "ok"
            except Exception:
                log.warning("readiness check: Redis unreachable")
                checks["redis"] = "unreachable"
        if admission is not None:  # `saturated`: requests in flight at the limit, or one shed in the last second
            checks["requests"] = admission.readiness()
        ready = "migrations" in checks and all(value == "ok" for value in checks.values())
        status = {"status": "ready" if ready else "unavailable", **checks}
        return JSONResponse(status, status_code=200 if ready else 503)

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
