"""GraphiQL, offline: strawberry's page with its CDN URLs pointed at the copies in `static/graphiql/`.

The assets are the exact npm releases the page asks for (React 18.2.0, GraphiQL 3.8.3, the explorer plugin
1.0.2, js-cookie 3.0.5), so their subresource-integrity hashes still match and are kept; a hash that does
not match the local file would be dropped (and the page test fails). A small login form above GraphiQL
runs the `login` mutation and puts `Authorization: Bearer ...` into GraphiQL's headers, which remounts
GraphiQL so its schema (documentation, completion) is the logged-in role's own.

The page gets a Content-Security-Policy that allows scripts from this origin plus the hash of the one
inline script, and nothing from any other host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope
from strawberry.http.ides import get_graphql_ide_html

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
ASSETS_URL = "/static/graphiql"

# CDN URL (as written in strawberry's page) -> path under static/graphiql/
ASSETS = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react@18.2.0/react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom@18.2.0/react-dom.production.min.js"
    ),
    "https://unpkg.com/js-cookie@3.0.5/dist/js.cookie.min.js": "js-cookie@3.0.5/js.cookie.min.js",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql@3.8.3/graphiql.min.css",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer@1.0.2/style.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql@3.8.3/graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": "plugin-explorer@1.0.2/index.umd.js",
}

LOGIN_FORM = """
    <form id="followup-login" class="followup-login" autocomplete="off">
      <strong>Follow-up API</strong>
      <input id="followup-username" name="username" placeholder="username" autocomplete="username" required />
      <input id="followup-password" name="password" type="password" placeholder="password"
             autocomplete="current-password" required />
      <input id="followup-totp" name="totp" placeholder="2FA code (if enrolled)" size="14" />
      <button id="followup-login-button" type="submit">Log in</button>
      <button id="followup-logout-button" type="button">Forget token</button>
      <span id="followup-login-status" role="status">Not logged in: you see the anonymous schema.</span>
    </form>
"""

# Edits to strawberry's inline script: each must apply exactly once (checked, so an upgrade that
# changes the page fails loudly instead of serving a page without the login hook).
_SCRIPT_EDITS = (
    (
        "const [headers, setHeaders] = React.useState(parameters.headers);",
        "const [headers, setHeaders] = React.useState(parameters.headers);\n"
        "        const [generation, setGeneration] = React.useState(0);\n"
        "        window.followupSetHeaders = function (value) {\n"
        "          setHeaders(value);\n"
        "          setGeneration(function (n) { return n + 1; });\n"
        "        };",
    ),
    ("return React.createElement(GraphiQL, {", "return React.createElement(GraphiQL, {\n          key: generation,"),
)

_SCRIPT_TAG = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_ASSET_TAG = re.compile(r'(?P<attr>src|href)="(?P<url>https://[^"]+)"\s*integrity="(?P<sri>[^"]+)"')


def sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


class Page:
    def __init__(self, html: str, csp: str) -> None:
        self.html = html
        self.csp = csp

    def response(self) -> Response:
        return HTMLResponse(self.html, headers=security_headers(self.csp))


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-store",
    }


def _rewrite_asset(match: re.Match[str]) -> str:
    url = match.group("url")
    local = ASSETS.get(url)
    if local is None:
        raise RuntimeError(f"strawberry's GraphiQL page asks for {url}, which is not shipped in static/graphiql/")
    path = ASSETS_DIR / local
    integrity = match.group("sri")
    if sri(path) == integrity:
        return f'{match.group("attr")}="{ASSETS_URL}/{local}"\n      integrity="{integrity}"'
    return f'{match.group("attr")}="{ASSETS_URL}/{local}"'


@lru_cache(maxsize=1)
def graphiql_page() -> Page:
    html = get_graphql_ide_html("graphiql")
    html = _ASSET_TAG.sub(_rewrite_asset, html)
    if "unpkg.com" in html or re.search(r'(src|href)="https?://', html):
        raise RuntimeError("the GraphiQL page still names another host")
    scripts = _SCRIPT_TAG.findall(html)
    if len(scripts) != 1:
        raise RuntimeError("expected one inline script in strawberry's GraphiQL page")
    script = scripts[0]
    for old, new in _SCRIPT_EDITS:
        if script.count(old) != 1:
            raise RuntimeError(f"strawberry's GraphiQL script changed; cannot apply: {old!r}")
        script = script.replace(old, new)
    html = html.replace(scripts[0], script)
    html = html.replace("<title>Strawberry GraphiQL</title>", "<title>Follow-up API · GraphiQL</title>")
    html = html.replace("</head>", f'  <link rel="stylesheet" href="{ASSETS_URL}/followup/login.css" />\n  </head>', 1)
    html = html.replace(
        '<div id="graphiql"',
        LOGIN_FORM + f'    <script src="{ASSETS_URL}/followup/login.js" defer></script>\n    <div id="graphiql"',
        1,
    )
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            # GraphiQL's components inject <style> elements and style attributes at run time.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )
    return Page(html, csp)


class StaticAssets(StaticFiles):
    """The shipped assets: revalidated by ETag, never sniffed as another type, not for other sites."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return response
