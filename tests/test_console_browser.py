"""The admin console in a real browser: Debian's headless Chromium, driven by Playwright, against a live server with
demo data serving the console's build at /admin/ (`make test` builds it first: `make console`). Every request to
another host is cut off. Screenshots of the main pages go to console/screenshots/ (console/README.md shows them).

Each demo role logs in and sees the sidebar its myMenus gives; a physician typing the users page's URL gets the
"not yours" page; a doctor opens a patient, records a follow-up outcome and sees it on the timeline and in its
amendment history; a chief physician reveals a masked identity number with a reason, and the reveal is in the audit
log; a session whose tokens are refused goes back to login and returns to the page it was on; the first screen
loads under 500 KB of compressed JavaScript."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, Request, Route, expect

from cli import run_migrations
from core.db import Database
from policies.bootstrap import ensure_builtin
from resolvers.demo.seed import seed_demo
from schema.engine.persisted import store_documents
from server import ROOT
from tests.browser_support import CHROMIUM, LOOPBACK, free_port
from tests.conftest import DEMO_PASSWORD

DIST = ROOT / "console" / "dist"
SHOTS = ROOT / "console" / "screenshots"
FIRST_SCREEN_LIMIT = 500_000  # bytes of gzip-compressed JavaScript
# myMenus (the administration module) decides the sidebar and the routes; until the server has it, the console
# shows a placeholder and routes only the dashboard.
HAS_MENUS = "myMenus" in (ROOT / "clients" / "schema" / "physician.graphql").read_text(encoding="utf-8")
needs_menus = pytest.mark.skipif(not HAS_MENUS, reason="myMenus is in no role's schema yet: pages are not routed")
# The live server runs on its own SQLite database with the default settings, whatever TEST_DATABASE_URL and
# TEST_SPEEDUPS say: CI's passes on MariaDB and with the speed-ups off would repeat the same run (3 minutes each).
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")) or os.environ.get("TEST_SPEEDUPS") == "off",
    reason="the console's browser test runs once, in the SQLite pass with default settings (its server ignores both)",
)


async def _seed(url: str, mini_program: bool = False) -> None:
    db = Database(url)
    try:
        await ensure_builtin(db)
        await seed_demo(db, password=DEMO_PASSWORD, patients=40)
        if mini_program:  # the demo patient's app: a patient's session runs only its trusted documents
            manifest = json.loads((ROOT / "clients" / "mini-program" / "manifest.json").read_text(encoding="utf-8"))
            await store_documents(db, "mini-program", manifest)
    finally:
        await db.dispose()


@contextmanager
def serve_console(tmp_path_factory: pytest.TempPathFactory, *, mini_program: bool = False) -> Iterator[str]:
    """A live server with demo data serving the console's build (one per test module: tests/test_console_pages.py
    has its own)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    assert (DIST / "index.html").exists(), "the console is not built: run `make console` (Node 20 and npm)"
    folder = tmp_path_factory.mktemp("console")
    url = f"sqlite+aiosqlite:///{folder}/console.db"
    run_migrations(url)
    asyncio.run(_seed(url, mini_program))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_MODE": "demo",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "FHIR_EXPORT_DIR": str(folder / "fhir-exports"),
    }
    env.pop("REDIS_URL", None)
    log = (folder / "server.log").open("wb")  # a file, not a pipe nobody reads (a full pipe would stall the server)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server:app_factory",
            "--factory",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded CI machine takes its time
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print(f"server log: {folder / 'server.log'}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_console(tmp_path_factory) as base:
        yield base


def _api(base: str, username: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API itself, as a demo user: what the console should show, and what it stored."""
    with httpx.Client(base_url=base, timeout=20) as http:
        login = http.post(
            "/graphql",
            json={
                "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
                "variables": {"u": username, "p": DEMO_PASSWORD},
            },
        ).json()
        token = login["data"]["login"]["accessToken"]
        answer = http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


class Session:
    """One browser context with its problems (page errors, foreign requests) and the JavaScript it loaded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.foreign: list[str] = []
        self.scripts: dict[str, int] = {}


async def _session(browser: Browser, width: int = 1280, height: int = 800) -> Session:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = await context.new_page()
    session = Session(page)

    async def gatekeeper(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == LOOPBACK:
            await route.continue_()
        else:
            session.foreign.append(request.url)
            await route.abort("blockedbyclient")

    async def on_response(response: Any) -> None:
        if response.url.endswith(".js") and response.ok:
            session.scripts[response.url] = len(gzip.compress(await response.body(), compresslevel=9))

    await context.route("**/*", gatekeeper)
    page.on("pageerror", lambda error: session.problems.append(f"page error: {error}"))
    page.on("response", on_response)
    page.set_default_timeout(20_000)
    return session


async def _login(session: Session, base: str, username: str, path: str = "/admin/") -> None:
    page = session.page
    await page.goto(f"{base}{path}")
    await page.wait_for_selector("[data-test=username]")
    await page.fill("[data-test=username]", username)
    await page.fill("[data-test=password]", DEMO_PASSWORD)
    await page.click("[data-test=login]")
    await page.wait_for_selector("[data-test=who]")


async def _open_menu(page: Page, directory: str, key: str) -> None:
    """Click a sidebar page, unfolding its directory first when it is folded (a click on an open one folds it)."""
    item = page.locator(f"[data-menu-key='{key}']")
    if not await item.is_visible():
        await page.click(f".el-sub-menu[data-menu-key={directory}] > .el-sub-menu__title")
        await expect(item).to_be_visible()
    await page.wait_for_timeout(300)  # the unfolding settles
    await item.click()


async def _shot(page: Page, name: str) -> None:
    """console/screenshots/<name>.png, with `make screenshots` (CONSOLE_SCREENSHOTS=1) only: other runs leave the
    committed pictures as they are (each run renders them again with a few pixels of noise)."""
    if os.environ.get("CONSOLE_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(exist_ok=True)
    await page.wait_for_timeout(300)  # transitions settle
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


MY_MENUS = "{ myMenus { key kind parentId id } }"


def _top_level_keys(entries: list[dict[str, Any]]) -> list[str]:
    """The sidebar's first level as the console draws it: roots that are pages, or directories with a page below."""
    ids = {e["id"] for e in entries}
    parents_of_pages = {e["parentId"] for e in entries if e["kind"] == "PAGE"}
    return sorted(
        e["key"]
        for e in entries
        if (e["parentId"] is None or e["parentId"] not in ids)
        and (e["kind"] == "PAGE" or (e["kind"] == "DIRECTORY" and e["id"] in parents_of_pages))
    )


@pytest.mark.parametrize("username", ["admin", "deptadmin", "chief", "physician"])
async def test_each_role_sees_its_own_sidebar(live_server: str, browser: Browser, username: str) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, username)
    await expect(page.locator("[data-test=card-overdue]")).to_be_visible()
    if HAS_MENUS:
        expected = _top_level_keys(_api(live_server, username, MY_MENUS)["myMenus"])
        assert expected, f"{username} has no menu"
        sidebar = page.locator("[data-test=sidebar] > li[data-menu-key]")
        await expect(sidebar).to_have_count(len(expected))
        shown = sorted(await sidebar.evaluate_all("items => items.map(i => i.dataset.menuKey)"))
        assert shown == expected
    else:
        await expect(page.locator("[data-test=menus-unavailable]")).to_be_visible()
    await _shot(page, f"dashboard-{username}")
    if username == "physician" and HAS_MENUS:  # English from the header: Element Plus and the menu titles follow
        await page.click("[data-test=locale]")
        await expect(page.locator("[data-test=sidebar]")).to_contain_text("Clinical")
        await expect(page.locator("[data-test=card-overdue]")).to_contain_text("Overdue follow-ups")
        await _shot(page, "dashboard-physician-en")
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


async def test_first_screen_is_under_500_kb_of_compressed_javascript(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await page.goto(f"{live_server}/admin/")
    await page.wait_for_selector("[data-test=username]")
    await page.wait_for_load_state("networkidle")
    login_screen = sum(session.scripts.values())
    await _shot(page, "login")
    await page.fill("[data-test=username]", "admin")
    await page.fill("[data-test=password]", DEMO_PASSWORD)
    await page.click("[data-test=login]")
    await page.wait_for_selector("[data-test=card-overdue]")
    await page.wait_for_load_state("networkidle")
    dashboard = sum(session.scripts.values())
    print(f"compressed JavaScript: login screen {login_screen} bytes, with the dashboard {dashboard} bytes")
    assert 0 < login_screen <= dashboard < FIRST_SCREEN_LIMIT
    # route-split: the patient page and the chart are not loaded for the first screen
    assert not any("PatientPage" in url or "OutcomeChart" in url for url in session.scripts)


@needs_menus
async def test_a_physician_cannot_open_the_users_page_by_its_url(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician", "/admin/system/users")
    await expect(page.locator("[data-test=not-routed]")).to_be_visible()
    assert "/admin/system/users" in page.url
    await _shot(page, "physician-users-refused")
    # the admin, whose myMenus has it, gets a route there
    admin = await _session(browser)
    await _login(admin, live_server, "admin", "/admin/system/users")
    await expect(admin.page.locator("[data-test=not-routed]")).to_have_count(0)


FOLLOW_UPS = """query { patients(first: 40) { edges { node { id name followUps { id status } } } } }"""


@needs_menus
async def test_a_doctor_records_a_follow_up_outcome_and_sees_it_in_the_history(
    live_server: str, browser: Browser
) -> None:
    patients = [e["node"] for e in _api(live_server, "physician", FOLLOW_UPS)["patients"]["edges"]]
    patient, follow_up = next((p, f) for p in patients for f in p["followUps"] if f["status"] == "SCHEDULED")
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician", "/admin/clinical/patients")
    await page.fill("[data-test=patient-search]", patient["name"])
    await page.click("[data-test=patient-search-button]")
    await page.click(f'[data-test="open-{patient["id"]}"]')
    await expect(page.locator("[data-test=patient-name]")).to_have_text(patient["name"])
    await _shot(page, "patient")

    note = f"术后恢复良好 {int(time.time())}"
    await page.click(f'[data-test="record-{follow_up["id"]}"]')
    await page.fill("[data-test=outcome-text-input]", note)
    await page.fill("[data-test=outcome-pain] input", "2")
    await _shot(page, "record-outcome")
    await page.click("[data-test=outcome-save]")
    item = page.locator(f'[data-test="follow-up-{follow_up["id"]}"]')
    await expect(item.locator("[data-test=outcome-text]")).to_contain_text(note)

    await page.click(f'[data-test="history-{follow_up["id"]}"]')
    history = page.locator("[data-test=follow-up-history]")
    await expect(history).to_contain_text(note)
    await expect(history).to_contain_text("陈医生")  # who recorded it
    await _shot(page, "follow-up-history")

    stored = _api(
        live_server,
        "physician",
        "query($id: ID!) { patient(id: $id) { followUps { id status outcomeText painScore } } }",
        {"id": patient["id"]},
    )["patient"]["followUps"]
    mine = next(f for f in stored if f["id"] == follow_up["id"])
    assert mine == {"id": follow_up["id"], "status": "COMPLETED", "outcomeText": note, "painScore": 2}
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


@needs_menus
async def test_a_chief_reveals_a_masked_identity_number_with_a_reason(live_server: str, browser: Browser) -> None:
    first = _api(live_server, "chief", "{ patients(first: 1) { edges { node { id name idNumber } } } }")
    patient = first["patients"]["edges"][0]["node"]
    assert "*" in patient["idNumber"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief", f"/admin/clinical/patients/{patient['id']}")
    field = page.locator("[data-test=field-idNumber]")
    await expect(field).to_have_text(patient["idNumber"])
    await page.click("[data-test=reveal-idNumber]")
    await page.click("[data-test=reveal-confirm]")  # no reason: refused in the form
    await expect(page.locator("[data-test=reveal-error]")).to_be_visible()
    await page.fill("[data-test=reveal-reason]", "核对")  # too short: the server's BAD_USER_INPUT names the field
    await page.click("[data-test=reveal-confirm]")
    await expect(page.locator("[data-test=reveal-error]")).to_contain_text("(reason)")
    await expect(field).to_have_text(patient["idNumber"])
    reason = "核对医保信息，患者本人在场"
    await page.fill("[data-test=reveal-reason]", reason)
    await page.click("[data-test=reveal-confirm]")
    await expect(field).not_to_contain_text("*")
    whole = (await field.inner_text()).strip()
    assert re.fullmatch(r"\d{17}[\dX]", whole) and whole[-4:] == patient["idNumber"][-4:]
    await _shot(page, "reveal")

    events = _api(
        live_server,
        "admin",
        'query($p: ID!) { auditEvents(first: 20, filter: {patientId: $p, action: "reveal"}) '
        "{ edges { node { operation detail } } } }",
        {"p": patient["id"]},
    )["auditEvents"]["edges"]
    assert {"operation": "revealField", "detail": {"field": "ID_NUMBER"}} in [e["node"] for e in events]
    assert whole not in str(events)  # the audit log says what was revealed, never the number
    # and the admin sees it in the console's audit log
    admin = await _session(browser)
    await _login(admin, live_server, "admin", "/admin/integrity/audit")
    await admin.page.click("[data-test=audit-action]")
    await admin.page.click(".el-select-dropdown__item:has-text('reveal')")
    await admin.page.click("[data-test=audit-search]")
    audit = admin.page.locator("[data-test=audit-table] .el-table__row", has_text="revealField")
    await expect(audit.first).to_contain_text("ID_NUMBER")
    await _shot(admin.page, "audit")
    grants = _api(live_server, "deptadmin", "{ breakGlassAccesses(first: 20) { edges { node { patientId reason } } } }")
    assert {"patientId": patient["id"], "reason": reason} in [e["node"] for e in grants["breakGlassAccesses"]["edges"]]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


async def test_a_refused_session_returns_to_login_and_comes_back(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician")
    # the session's tokens stop working (ended elsewhere): the next page asks for login, keeping where it was
    await page.evaluate(
        "sessionStorage.setItem('followup.session', JSON.stringify("
        "{accessToken: 'x.y.z', refreshToken: 'gone', expiresAt: Date.now() + 600000}))"
    )
    target = "/admin/clinical/patients" if HAS_MENUS else "/admin/"
    await page.goto(f"{live_server}{target}")
    await page.wait_for_selector("[data-test=username]")
    assert urlsplit(page.url).path == "/admin/login"
    redirect = "/clinical/patients" if HAS_MENUS else "/"
    assert f"redirect={redirect.replace('/', '%2F')}" in page.url or f"redirect={redirect}" in page.url
    await page.fill("[data-test=username]", "physician")
    await page.fill("[data-test=password]", DEMO_PASSWORD)
    await page.click("[data-test=login]")
    await page.wait_for_selector("[data-test=who]")
    assert urlsplit(page.url).path == f"/admin{redirect}".rstrip("/") or urlsplit(page.url).path == "/admin/"
    if HAS_MENUS:
        await expect(page.locator("[data-test=patients-table]")).to_be_visible()


async def _confirm_box(page: Page, reason: str | None = None) -> None:
    """Element Plus's confirmation box: the reason asked for (when it asks), then OK."""
    box = page.locator(".el-message-box")
    await expect(box).to_be_visible()
    if reason is not None:
        await box.locator("input").fill(reason)
    await box.locator(".el-message-box__btns .el-button--primary").click()
    await expect(box).to_have_count(0)


@needs_menus
async def test_an_admin_forces_a_physicians_session_out(live_server: str, browser: Browser) -> None:
    doctor = await _session(browser)
    await _login(doctor, live_server, "physician")
    sessions = _api(
        live_server,
        "admin",
        '{ onlineSessions(first: 100, filter: {search: "physician"}) { edges { node { id userName loggedInAt } } } }',
    )["onlineSessions"]["edges"]
    newest = max((e["node"] for e in sessions), key=lambda s: s["loggedInAt"])

    admin = await _session(browser)
    page = admin.page
    await _login(admin, live_server, "admin", "/admin/operations/sessions")
    button = page.locator(f'[data-test="force-logout-{newest["id"]}"]')
    await expect(button).to_be_visible()
    await _shot(page, "sessions")
    await button.click()
    await _confirm_box(page, "设备遗失，结束会话")
    await expect(button).to_have_count(0)  # ended sessions leave the list

    # the physician's next request is refused and the refresh token with it: back to login, keeping the page
    await _open_menu(doctor.page, "clinical", "clinical.patients")
    await doctor.page.wait_for_selector("[data-test=username]")
    assert urlsplit(doctor.page.url).path == "/admin/login"
    assert "clinical%2Fpatients" in doctor.page.url or "clinical/patients" in doctor.page.url
    assert not admin.problems and not admin.foreign, (admin.problems, admin.foreign)


@needs_menus
async def test_an_admin_runs_a_job_and_sees_the_roles_matrix_and_the_department_tree(
    live_server: str, browser: Browser
) -> None:
    jobs = _api(live_server, "admin", "{ jobs(first: 50) { edges { node { id target executionCount } } } }")
    purge = next(e["node"] for e in jobs["jobs"]["edges"] if e["node"]["target"] == "sessions.purge_expired")
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin", "/admin/operations/jobs")
    await page.click(f'[data-test="run-now-{purge["id"]}"]')
    await _confirm_box(page)
    await expect(page.locator(".el-message--success")).to_be_visible()  # the run was asked for (a busy machine is slow)
    deadline = time.monotonic() + 15
    while True:  # the run is recorded as it starts, which on a busy machine can follow the answer by a moment
        runs = _api(
            live_server,
            "admin",
            "query($id: ID!) { jobRuns(jobId: $id, first: 5) { edges { node { trigger requestedBy } } } }",
            {"id": purge["id"]},
        )["jobRuns"]["edges"]
        if runs or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert any(e["node"]["trigger"] == "MANUAL" for e in runs), runs
    await _shot(page, "jobs")

    await _open_menu(page, "system", "system.roles")
    matrix = page.locator("[data-test=permission-matrix]")
    catalog = _api(live_server, "admin", "{ permissionCatalog { permissions { object } } }")["permissionCatalog"]
    await expect(matrix).to_contain_text(catalog[0]["permissions"][0]["object"])  # the first domain's lines
    await page.fill("[data-test=permission-filter]", "Patient.phone")
    await expect(matrix).to_contain_text("Patient.phone")
    # the physician's own line for a masked phone, and the chief's, inherited from it
    await expect(page.locator('[data-test="perm-physician-Patient.phone-read_masked"]')).to_be_visible()
    await _shot(page, "roles")

    await _open_menu(page, "system", "system.departments")
    tree = page.locator("[data-test=departments-tree]")
    departments = _api(live_server, "admin", "{ departments { name } }")["departments"]
    for department in departments:
        await expect(tree).to_contain_text(department["name"])
    await _shot(page, "departments")

    await _open_menu(page, "operations", "operations.server")
    await expect(page.locator("[data-test=server-status]")).to_be_visible()
    # the console's own persisted documents are named operations in the figures
    await expect(page.locator("[data-test=service-stats]")).to_contain_text("Jobs")
    await expect(page.locator("[data-test=bar-chart]")).to_be_visible()
    await _shot(page, "server")
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


def _token(base: str, username: str) -> str:
    answer = httpx.post(
        f"{base}/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
            "variables": {"u": username, "p": DEMO_PASSWORD},
        },
        timeout=20,
    ).json()
    token: str = answer["data"]["login"]["accessToken"]
    return token


def _gql(base: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


async def test_login_with_a_one_time_code_then_the_forced_password_change(live_server: str, browser: Browser) -> None:
    token = _token(live_server, "physician2")
    secret = _gql(live_server, token, "mutation { enrollTotp { secret } }")["enrollTotp"]["secret"]
    totp = pyotp.TOTP(secret)
    _gql(live_server, token, "mutation($c: String!) { confirmTotp(code: $c) { totpEnabled } }", {"c": totp.now()})
    users = _api(live_server, "admin", '{ users(first: 5, filter: {search: "physician2"}) { edges { node { id } } } }')
    user_id = users["users"]["edges"][0]["node"]["id"]
    temporary = _api(
        live_server,
        "admin",
        "mutation($id: ID!) { resetPassword(userId: $id) { temporaryPassword } }",
        {"id": user_id},
    )["resetPassword"]["temporaryPassword"]

    session = await _session(browser)
    page = session.page
    await page.goto(f"{live_server}/admin/")
    await page.fill("[data-test=username]", "physician2")
    await page.fill("[data-test=password]", temporary)
    await page.click("[data-test=login]")
    await expect(page.locator("[data-test=totp]")).to_be_visible()  # the password was right; the code is asked
    await _shot(page, "login-totp")
    # the enrolment used this time step's code; each code works once, so the next step's (accepted as a neighbour)
    await page.fill("[data-test=totp]", totp.at(time.time() + 30))
    await page.click("[data-test=login]")
    await page.wait_for_selector("[data-test=new-password]")
    assert urlsplit(page.url).path == "/admin/change-password"
    await page.fill("[data-test=old-password]", temporary)
    await page.fill("[data-test=new-password]", "Changed#Pass2026")
    await page.fill("[data-test=repeat-password]", "Changed#Pass2026")
    await page.click("[data-test=change]")
    await page.wait_for_selector("[data-test=who]")
    await expect(page.locator("[data-test=card-overdue]")).to_be_visible()
    assert not session.problems and not session.foreign, (session.problems, session.foreign)
