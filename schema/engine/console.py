"""The admin console (console/, a Vue app) at /admin/, served from its build in console/dist/.

`make run` builds it first (npm ci, vite build) when the build is missing or older than its sources; the server
only serves what is there. A path under /admin/ that names no file is one of the console's own routes (the app
routes in the browser, history mode), so it gets index.html; a missing asset stays a 404. Hashed assets are
cached for good; index.html is revalidated, so a new build is picked up at once. The page may load scripts and
make requests to this origin only.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from schema.engine.graphiql import ROOT, security_headers

CONSOLE_DIR = ROOT / "console" / "dist"
CONSOLE_URL = "/admin"

CONSOLE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Element Plus positions popups and tables with style attributes
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ConsoleFiles(StaticFiles):
    async def check_config(self) -> None:
        if self.directory is not None and await anyio.Path(self.directory).is_dir():
            await super().check_config()
        # No build yet: every path answers how to build it (below), and the server runs without it.

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith("assets"):
                raise
        try:
            return await super().get_response("index.html", scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return PlainTextResponse("The admin console is not built: run `make console` (Node 20 and npm).", 404)

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if os.path.basename(os.path.dirname(full_path)) == "assets":
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"  # names carry a content hash
        else:
            response.headers.update(security_headers(CONSOLE_CSP))
            response.headers["Cache-Control"] = "no-cache"
        return response


def console_routes(directory: Path = CONSOLE_DIR) -> list[BaseRoute]:
    async def to_console(_request: object) -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_URL}/")

    return [
        Route(CONSOLE_URL, to_console),
        Mount(CONSOLE_URL, app=ConsoleFiles(directory=directory, check_dir=False), name="console"),
    ]
