"""GraphiQL is served offline: local assets with matching SRI hashes, a strict CSP, a login form."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from schema.engine.graphiql import ASSETS, ASSETS_DIR
from tests.conftest import GraphQLClient

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_page_loads_nothing_from_another_host(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html[:500]
    for url in urls:
        assert url.startswith("/static/graphiql/") or url.startswith("data:"), url
    assert "unpkg.com" not in html and "cdn" not in html.lower()
    # every referenced asset is served, and its integrity hash (kept) matches the bytes served
    for tag in re.findall(r"<(?:script|link)[^>]*>", html):
        src = re.search(r'(?:src|href)="(/static/[^"]+)"', tag)
        if not src:
            continue
        asset = await client.http.get(src.group(1))
        assert asset.status_code == 200, src.group(1)
        assert asset.headers["x-content-type-options"] == "nosniff"
        integrity = re.search(r'integrity="([^"]+)"', tag)
        if "followup/" not in src.group(1):
            assert integrity, f"integrity dropped for {src.group(1)}"
        if integrity:
            digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
            assert integrity.group(1) == f"sha384-{digest}"


async def test_every_cdn_asset_is_shipped_with_a_licence(client: GraphQLClient) -> None:
    for url, local in ASSETS.items():
        assert (ASSETS_DIR / local).is_file(), url
    licences = (ASSETS_DIR / "LICENSES.md").read_text()
    for package in ("react@18.2.0", "react-dom@18.2.0", "graphiql@3.8.3", "plugin-explorer@1.0.2", "js-cookie"):
        assert package in licences


async def test_page_has_security_headers(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers=HTML)
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
    for directive, value in directives.items():
        assert "http" not in value and "*" not in value, (directive, value)
    # the one inline script is allowed by its hash
    [inline] = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in directives["script-src"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_page_has_the_login_form_and_hook(client: GraphQLClient) -> None:
    html = (await client.http.get("/graphql", headers=HTML)).text
    assert 'id="followup-login"' in html
    assert "window.followupSetHeaders" in html
    assert "key: generation" in html
    script = await client.http.get("/static/graphiql/followup/login.js")
    assert "login(username: $u, password: $p" in script.text
    assert "Authorization" in script.text


async def test_login_mutation_used_by_the_page_works(client: GraphQLClient) -> None:
    query = re.search(r'var LOGIN =\s*((?:"[^"]*"\s*\+?\s*)+);', (ASSETS_DIR / "followup/login.js").read_text())
    assert query
    document = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', query.group(1))).replace("\\n", "\n")
    from tests.conftest import DEMO_PASSWORD

    result = await client.data(document, {"u": "physician", "p": DEMO_PASSWORD, "totp": None})
    token = result["login"]["accessToken"]
    assert (await client.data("{ me { username } }", token=token))["me"]["username"] == "physician"


async def test_a_query_string_is_not_the_ide(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("settings_overrides", [{"graphiql_enabled": False}])
async def test_graphiql_can_be_switched_off(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    response = await client.http.get("/graphql", headers=HTML)
    assert response.status_code == 404
    assert "<html" not in response.text.lower()
    asset = await client.http.get("/static/graphiql/graphiql@3.8.3/graphiql.min.js")
    assert asset.status_code == 404
    # the API itself still answers
    assert (await client.data("{ serverInfo { name } }"))["serverInfo"]["name"]
