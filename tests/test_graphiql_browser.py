"""A real browser against a live server: Debian's headless Chromium, driven by Playwright, with every
request to another host cut off. Opens GraphiQL, logs in with the page's form, runs a query, sees the
answer. Fails (never skips) when Chromium cannot run: `make test` installs it (`make browser`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Route, expect

from cli import run_migrations
from core.db import Database
from policies.bootstrap import ensure_builtin
from resolvers.demo.seed import seed_demo
from server import ROOT
from tests.browser_support import CHROMIUM, LOOPBACK, free_port
from tests.conftest import DEMO_PASSWORD


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await ensure_builtin(db)
        await seed_demo(db, password=DEMO_PASSWORD)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser')}/browser.db"
    run_migrations(url)
    asyncio.run(_seed(url))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_MODE": "demo",
        "GRAPHIQL_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server:app_factory", "--factory", "--host", LOOPBACK, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"uvicorn did not start:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def _poll(page: Page, function: str, seconds: float = 15.0) -> None:
    """Like page.wait_for_function, which evaluates a string and so is refused by the page's CSP."""
    deadline = time.monotonic() + seconds
    while not await page.evaluate(function):
        assert time.monotonic() < deadline, f"timed out waiting for {function}"
        await asyncio.sleep(0.1)


async def test_graphiql_in_headless_chromium_offline(live_server: str, browser: Browser) -> None:
    foreign: list[str] = []
    local: list[str] = []
    problems: list[str] = []

    async def gatekeeper(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == LOOPBACK:
            local.append(request.url)
            await route.continue_()
        else:
            foreign.append(request.url)
            await route.abort("blockedbyclient")

    context = await browser.new_context()
    await context.route("**/*", gatekeeper)
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None,
    )
    page.set_default_timeout(15_000)

    await page.goto(f"{live_server}/graphql")
    await page.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror")

    await page.fill("#followup-username", "admin")
    await page.fill("#followup-password", DEMO_PASSWORD)
    await page.click("#followup-login-button")
    await expect(page.locator("#followup-login-status")).to_contain_text("Logged in as admin")
    # GraphiQL was remounted with the token in its headers editor
    await page.wait_for_selector(".graphiql-query-editor .CodeMirror")
    await _poll(
        page,
        "() => Array.from(document.querySelectorAll('.graphiql-editor-tool .CodeMirror'))"
        ".some(e => e.CodeMirror.getValue().includes('Authorization: Bearer') ||"
        ' e.CodeMirror.getValue().includes(\'"Authorization": "Bearer \'))',
    )
    await page.evaluate(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('{ me { username } }')"
    )
    await page.click(".graphiql-execute-button")
    await expect(page.locator(".result-window")).to_contain_text('"admin"')
    result = await page.inner_text(".result-window")
    assert '"username": "admin"' in result

    assert not foreign, f"the page asked other hosts for: {foreign}"
    assert any("/static/graphiql/graphiql@3.8.3/graphiql.min.js" in url for url in local), local
    assert not problems, problems
