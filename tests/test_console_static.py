"""The admin console's build is served at /admin/ (schema/engine/console.py): files as they are, the console's own
routes as index.html (the app routes in the browser), a missing asset as 404, index.html with a policy that lets the
page load scripts and make requests to this origin only, hashed assets cached for good."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from schema.engine.console import console_routes


def _app(directory: Path) -> Starlette:
    return Starlette(routes=console_routes(directory))


def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_console_routes_get_index_and_assets_are_cached(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><div id="app"></div>', encoding="utf-8")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)", encoding="utf-8")
    async with _client(_app(tmp_path)) as http:
        bare = await http.get("/admin")
        assert bare.status_code in (302, 307) and bare.headers["location"].endswith("/admin/")
        for path in ("/admin/", "/admin/patients/12", "/admin/login?redirect=/patients"):
            page = await http.get(path)
            assert page.status_code == 200, path
            assert '<div id="app">' in page.text
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-cache"
        asset = await http.get("/admin/assets/index-abc123.js")
        assert asset.status_code == 200 and asset.text == "console.log(1)"
        assert "immutable" in asset.headers["cache-control"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        missing = await http.get("/admin/assets/gone-000.js")
        assert missing.status_code == 404


async def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    async with _client(_app(tmp_path / "dist")) as http:
        page = await http.get("/admin/")
        assert page.status_code == 404
        assert "make console" in page.text
