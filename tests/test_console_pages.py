"""The console's appointment, consultation and editor pages in a real browser (Debian's headless Chromium through
Playwright), against one live server with demo data for the whole module (tests/test_console_browser.py's
serve_console): a chief physician checks a schedule plan by a dry run, sees each bad row's problems with nothing
written, then checks a good plan and imports it; the week calendar shows the sessions with capacity and bookings."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

from server import ROOT
from tests.conftest import DEMO_PASSWORD
from tests.test_console_browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    _api,
    _login,
    _open_menu,
    _session,
    _shot,
    needs_menus,
    pytestmark,  # noqa: F401 - the same skip: the browser tests run once, in the SQLite pass
    serve_console,
)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_console(tmp_path_factory, mini_program=True) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


HEADER = ["Date", "Session", "Start", "End", "Physician", "Department", "Capacity", "Slot minutes", "Location"]


def _plan(rows: list[list[Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


SESSIONS = """query ($from: Date!, $to: Date!) { schedules(first: 100, filter: { from: $from, to: $to }) {
  edges { node { id day session capacity physicianName location } } } }"""


@needs_menus
async def test_a_schedule_plan_is_checked_by_a_dry_run_then_imported(live_server: str, browser: Browser) -> None:
    # a day after the demo's month of sessions (two weeks on), so the imported session is the only one there
    day = (date.today() + timedelta(days=40)).isoformat()
    room = "控制台导入 701"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "appointments", "appointments.schedules")
    await expect(page.locator("[data-test=calendar]")).to_be_visible()
    await expect(page.locator("[data-test^=session-]").first).to_be_visible()  # the demo's sessions this week
    await _shot(page, "schedules")

    await page.click("[data-test=open-import]")
    bad = _plan(
        [
            [day, "morning", "", "", "physician", "", 12, 15, room],
            [day, "afternoon", "", "", "nobody-here", "", 10, 15, room],
            [day, "evening", "", "", "physician", "", "many", 15, room],
        ]
    )
    await page.set_input_files("[data-test=import-file]", {"name": "plan.csv", "mimeType": "text/csv", "buffer": bad})
    await expect(page.locator("[data-test=import-commit]")).to_be_disabled()  # never before a dry run
    await page.click("[data-test=import-dry-run]")
    report = page.locator("[data-test=import-report]")
    await expect(report).to_be_visible()
    problems = page.locator("[data-test=import-problems]")
    await expect(problems.locator("[data-test=problem-row-3]")).to_be_visible()  # the unknown physician
    await expect(problems.locator("[data-test=problem-row-4]")).to_be_visible()  # the capacity that is no number
    await expect(problems.locator("[data-test=problem-row-2]")).to_have_count(0)  # the good row
    await expect(problems).to_contain_text("Physician")
    await expect(page.locator("[data-test=import-commit]")).to_be_disabled()
    await _shot(page, "schedule-import-dry-run")
    assert not _api(live_server, "chief", SESSIONS, {"from": day, "to": day})["schedules"]["edges"]  # nothing written

    good = _plan([[day, "morning", "", "", "physician", "", 12, 15, room]])
    await page.set_input_files("[data-test=import-file]", {"name": "plan.csv", "mimeType": "text/csv", "buffer": good})
    await page.click("[data-test=import-dry-run]")
    await expect(report).to_contain_text("1")
    await expect(page.locator("[data-test=import-problems]")).to_have_count(0)
    assert not _api(live_server, "chief", SESSIONS, {"from": day, "to": day})["schedules"]["edges"]  # still a dry run
    await page.click("[data-test=import-commit]")
    await expect(page.locator("[data-test=import-commit]")).to_be_disabled()  # written: the report is no dry run
    stored = [e["node"] for e in _api(live_server, "chief", SESSIONS, {"from": day, "to": day})["schedules"]["edges"]]
    assert [(s["day"], s["session"], s["capacity"], s["location"]) for s in stored] == [(day, "MORNING", 12, room)]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


def _as_patient(base: str, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The demo patient's app: logged in, then one of its trusted documents by its hash (the only kind a patient's
    session runs)."""
    with httpx.Client(base_url=base, timeout=20) as http:
        login = http.post(
            "/graphql",
            json={
                "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
                "variables": {"u": "patient", "p": DEMO_PASSWORD},
            },
        ).json()
        token = login["data"]["login"]["accessToken"]
        digest = hashlib.sha256(document.encode()).hexdigest()
        answer = http.post(
            "/graphql",
            json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


CONVERSATIONS = "{ myConversations(first: 10) { edges { node { id patientName } } } }"
MESSAGES = "query ($id: ID!) { conversation(id: $id) { messages(first: 20) { edges { node { text senderName } } } } }"


@needs_menus
async def test_a_live_message_arrives_in_an_open_consultation_and_the_doctor_answers(
    live_server: str, browser: Browser
) -> None:
    conversation = _api(live_server, "chief", CONVERSATIONS)["myConversations"]["edges"][0]["node"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "consultations", "consultations.mine")
    await page.click(f'[data-test="conversation-{conversation["id"]}"]')
    await expect(page.locator("[data-test=messages]")).to_contain_text("三个月后复查")  # the demo's answer
    await expect(page.locator("[data-test=live-state]")).to_have_text("实时")  # the websocket is open

    question = f"医生您好，伤口今天有点渗液 {int(time.time())}"
    send = (ROOT / "clients" / "mini-program" / "sendMessage.graphql").read_text(encoding="utf-8")
    _as_patient(live_server, send, {"conversationId": conversation["id"], "text": question})
    await expect(page.locator("[data-test=messages]")).to_contain_text(question)  # live, no reload

    answer = f"请明天上午来门诊换药 {int(time.time())}"
    await page.fill("[data-test=message-input]", answer)
    await page.press("[data-test=message-input]", "Enter")
    await expect(page.locator("[data-test=message-input]")).to_have_value("")
    await expect(page.locator("[data-test=messages]")).to_contain_text(answer)
    await _shot(page, "consultation")
    stored = _api(live_server, "chief", MESSAGES, {"id": conversation["id"]})["conversation"]["messages"]["edges"]
    assert [e["node"]["text"] for e in stored][:2] == [answer, question]  # newest first
    assert not session.problems and not session.foreign, (session.problems, session.foreign)
