"""The console's appointment, consultation and editor pages in a real browser (Debian's headless Chromium through
Playwright), against one live server with demo data for the whole module (tests/test_console_browser.py's
serve_console): a chief physician checks a schedule plan by a dry run, sees each bad row's problems with nothing
written, then checks a good plan and imports it; the week calendar shows the sessions with capacity and bookings."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from server import ROOT
from tests.conftest import DEMO_PASSWORD
from tests.test_console_browser import (
    _api,
    _confirm_box,
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


PATIENT = """query ($id: ID!) { patient(id: $id) { name allergies version
  visits { visitType chiefComplaint diagnoses { icd10Code isPrimary } } } }"""


@needs_menus
async def test_a_doctor_registers_a_patient_edits_it_and_records_a_visit_with_icd_10_diagnoses(
    live_server: str, browser: Browser
) -> None:
    name = f"控制台{int(time.time()) % 100000}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician", "/admin/clinical/patients")
    await page.click("[data-test=register-patient]")
    await page.fill("[data-test=patient-form-name]", name)
    await page.fill("[data-test=patient-form-phone]", "139 bad")
    await expect(page.locator("[data-test=patient-dialog]")).to_contain_text("11")  # the phone is checked first
    await page.fill("[data-test=patient-form-phone]", f"139{int(time.time()) % 100000000:08d}")
    await page.click("[data-test=patient-form-save]")
    await expect(page.locator("[data-test=patient-name]")).to_have_text(name)  # the new record's page
    patient_id = page.url.rsplit("/", 1)[1]

    await page.click("[data-test=edit-patient]")
    await page.fill("[data-test=patient-form-allergies]", "青霉素过敏")
    await page.fill("[data-test=patient-form-reason]", "患者补充过敏史")
    await page.click("[data-test=patient-form-save]")
    await expect(page.locator(".el-descriptions")).to_contain_text("青霉素过敏")

    await page.click("[data-test=record-visit]")
    await page.fill("[data-test=visit-complaint]", "肛门疼痛伴便血一周")
    for term, code in (("慢性肛裂", "K60.1"), ("K64.1", "K64.1")):
        await page.locator("[data-test=icd-picker] input").fill(term)  # the API's ICD-10 search, as typed
        await page.click(f'[data-test="icd-option-{code}"]')
    await page.click("[data-test=visit-dialog] .el-dialog__header")  # close the picker's list
    await page.click("[data-test=visit-dialog] .el-radio:has-text('K64.1')")  # the primary diagnosis
    await _shot(page, "record-visit")
    await page.click("[data-test=visit-save]")
    await expect(page.locator("[data-test=visits-table]")).to_contain_text("K60.1")
    stored = _api(live_server, "physician", PATIENT, {"id": patient_id})["patient"]
    assert stored["name"] == name and stored["allergies"] == "青霉素过敏"
    [visit] = stored["visits"]
    assert visit["chiefComplaint"] == "肛门疼痛伴便血一周" and visit["visitType"] == "OUTPATIENT"
    assert sorted((d["icd10Code"], d["isPrimary"]) for d in visit["diagnoses"]) == [("K60.1", False), ("K64.1", True)]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


USER = """query ($s: String) { users(first: 5, filter: { search: $s }) { edges { node { username displayName
  roles { key } department { code } } } } }"""


@needs_menus
async def test_an_admin_creates_a_department_and_a_user_in_it(live_server: str, browser: Browser) -> None:
    code = f"C{int(time.time()) % 100000}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin", "/admin/system/departments")
    await page.click("[data-test=create-department]")
    await page.fill("[data-test=department-name]", f"控制台科室{code}")
    await page.fill("[data-test=department-code]", code)
    await page.click("[data-test=department-save]")
    await expect(page.locator("[data-test=departments-tree]")).to_contain_text(code)

    await _open_menu(page, "system", "system.users")
    await page.click("[data-test=create-user]")
    username = f"doc{code.lower()}"
    await page.fill("[data-test=user-username]", username)
    await page.fill("[data-test=user-display-name]", f"新医生{code}")
    await page.fill("[data-test=user-password]", "Console#2026pw")
    await page.click("[data-test=user-department]")
    await page.click(f".el-select-dropdown__item:has-text('{code}')")
    await page.click("[data-test=user-roles]")
    await page.click("[data-test=role-option-physician]")
    await page.click("[data-test=user-dialog] .el-dialog__header")
    await page.click("[data-test=user-save]")
    await expect(page.locator("[data-test=users-table]")).to_contain_text(username)
    [user] = [e["node"] for e in _api(live_server, "admin", USER, {"s": username})["users"]["edges"]]
    assert user["displayName"] == f"新医生{code}" and [r["key"] for r in user["roles"]] == ["physician"]
    assert user["department"]["code"] == code
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


DICTIONARY = '{ dictionaries(keys: ["VisitType"]) { entries { code labelZh } } }'
POSITIONS = "{ positions { name description } }"
KEYWORDS = "{ moderationKeywords(first: 100) { edges { node { keyword action } } } }"


@needs_menus
async def test_an_admin_reads_the_logs_adds_a_position_and_a_keyword_and_renames_a_dictionary_label(
    live_server: str, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin", "/admin/integrity/logins")
    await page.fill("[data-test=login-log-username]", "admin")
    await page.press("[data-test=login-log-username]", "Enter")
    await expect(page.locator("[data-test=login-log-table]")).to_contain_text("admin")  # this very login

    await _open_menu(page, "system", "system.positions")
    position = f"随访专员{int(time.time()) % 10000}"
    await page.click("[data-test=create-position]")
    await page.fill("[data-test=position-name]", position)
    await page.fill("[data-test=position-description]", "负责术后电话随访")
    await page.click("[data-test=position-save]")
    await expect(page.locator("[data-test=positions-table]")).to_contain_text(position)
    assert {"name": position, "description": "负责术后电话随访"} in _api(live_server, "admin", POSITIONS)["positions"]

    await _open_menu(page, "system", "system.dictionaries")
    await page.click("[data-test=dictionary-VisitType]")
    await page.click("[data-test=edit-entry-OUTPATIENT]")
    await page.fill("[data-test=entry-label-zh]", "门诊就诊")
    await page.click("[data-test=entry-save]")
    await expect(page.locator("[data-test=dictionary-entries]")).to_contain_text("门诊就诊")
    entries = _api(live_server, "admin", DICTIONARY)["dictionaries"][0]["entries"]
    assert {"code": "OUTPATIENT", "labelZh": "门诊就诊"} in entries

    await _open_menu(page, "system", "system.menus")
    await expect(page.locator("[data-test=menus-table]")).to_contain_text("system.menus")
    await _shot(page, "menus")

    await _open_menu(page, "system", "system.operation-log")  # the position just made, in the operation log
    await page.fill("[data-test=operation-log-operation]", "createPosition")
    await page.press("[data-test=operation-log-operation]", "Enter")
    await expect(page.locator("[data-test=operation-log-table]")).to_contain_text("createPosition")

    await _open_menu(page, "moderation", "moderation.keywords")
    keyword = f"包治百病{int(time.time()) % 1000}"
    await page.fill("[data-test=keyword-input]", keyword)
    await page.click("[data-test=keyword-add]")
    await expect(page.locator("[data-test=keywords-table]")).to_contain_text(keyword)
    stored = _api(live_server, "admin", KEYWORDS)["moderationKeywords"]["edges"]
    assert {"keyword": keyword, "action": "HOLD"} in [e["node"] for e in stored]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


ARTICLES = "{ articles(first: 20) { edges { node { id title } } } }"
COMMENT = "query ($id: ID!) { article(id: $id) { comments(first: 20) { edges { node { text status } } } } }"


@needs_menus
async def test_a_chief_writes_and_publishes_an_article_and_approves_a_held_comment(
    live_server: str, browser: Browser
) -> None:
    title = f"痔疮术后饮食指导 {int(time.time()) % 100000}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "education", "education.articles")
    await page.click("[data-test=create-article]")
    await page.fill("[data-test=article-title]", title)
    await page.fill("[data-test=article-summary]", "术后一周内的饮食要点")
    await page.fill("[data-test=article-body]", "## 饮食要点\n\n- 多喝水\n- **多吃蔬菜**\n\n<script>alert(1)</script>")
    await page.click("[data-test=article-save]")
    preview = page.locator("[data-test=article-preview]")
    await expect(preview.locator("h2")).to_have_text("饮食要点")  # the server's rendering
    await expect(preview.locator("strong")).to_have_text("多吃蔬菜")
    await expect(preview.locator("script")).to_have_count(0)  # raw HTML is not passed through
    await _shot(page, "article-editor")
    await page.click("[data-test=article-publish]")
    await expect(page.locator("[data-test=editor-status]")).to_have_text("已发布")
    article = next(
        a["node"] for a in _api(live_server, "chief", ARTICLES)["articles"]["edges"] if a["node"]["title"] == title
    )

    # the demo patient comments with a phrase the moderation keywords hold for review
    add = (ROOT / "clients" / "mini-program" / "addComment.graphql").read_text(encoding="utf-8")
    held = _as_patient(live_server, add, {"contentId": article["id"], "text": "有没有祖传秘方可以不用手术？"})
    assert held["addComment"]["status"] == "HELD"
    await _open_menu(page, "moderation", "moderation.comments")
    comment_id = held["addComment"]["id"]
    await expect(page.locator("[data-test=comments-table]")).to_contain_text("祖传秘方")
    await _shot(page, "comments")
    await page.click(f'[data-test="approve-{comment_id}"]')
    await _confirm_box(page)
    await expect(page.locator("[data-test=comments-table]")).not_to_contain_text("祖传秘方")  # out of the queue
    stored = _api(live_server, "chief", COMMENT, {"id": article["id"]})["article"]["comments"]["edges"]
    assert [(e["node"]["text"], e["node"]["status"]) for e in stored] == [("有没有祖传秘方可以不用手术？", "VISIBLE")]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


@needs_menus
async def test_a_tablet_gets_a_folded_sidebar_and_pages_that_fit(live_server: str, browser: Browser) -> None:
    session = await _session(browser, width=1024, height=768)  # an iPad in landscape
    page = session.page
    await _login(session, live_server, "chief")
    sidebar = page.locator("[data-test=sidebar]")
    await expect(sidebar).to_have_class(re.compile(r"el-menu--collapse"))  # folded to its icons
    assert (await page.locator(".aside").bounding_box() or {"width": 0})["width"] <= 64
    await page.click("[data-test=toggle-sidebar]")  # unfolded on demand
    await expect(sidebar).not_to_have_class(re.compile(r"el-menu--collapse"))
    await _open_menu(page, "appointments", "appointments.schedules")
    await page.click("[data-test=toggle-sidebar]")
    await expect(page.locator("[data-test=calendar]")).to_be_visible()
    # nothing wider than the screen: the page itself does not scroll sideways
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1024
    await _shot(page, "tablet-schedules")
    await page.set_viewport_size({"width": 1280, "height": 800})  # turned to a laptop's width: unfolded again
    await expect(sidebar).not_to_have_class(re.compile(r"el-menu--collapse"))
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


GRANTS = "{ breakGlassAccesses(first: 50) { edges { node { id reason reviewedAt reviewNote } } } }"


@needs_menus
async def test_a_department_admin_reviews_a_break_the_glass_access(live_server: str, browser: Browser) -> None:
    patient = _api(live_server, "chief", "{ patients(first: 1) { edges { node { id } } } }")["patients"]["edges"][0]
    reason = f"急诊抢救需核对身份证号 {int(time.time())}"
    _api(
        live_server,
        "chief",
        "mutation ($p: ID!, $r: String!) { revealField(patientId: $p, field: ID_NUMBER, reason: $r) }",
        {"p": patient["node"]["id"], "r": reason},
    )
    grant = next(
        e["node"]
        for e in _api(live_server, "deptadmin", GRANTS)["breakGlassAccesses"]["edges"]
        if e["node"]["reason"] == reason
    )
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "deptadmin", "/admin/integrity/break-glass")
    table = page.locator("[data-test=break-glass-table]")
    await expect(table).to_contain_text(reason)  # not yet reviewed: listed first
    await page.click(f'[data-test="review-{grant["id"]}"]')
    await _confirm_box(page, "已核实，确属抢救需要")
    await expect(table).not_to_contain_text(reason)  # reviewed: out of the unreviewed list
    stored = next(
        e["node"]
        for e in _api(live_server, "deptadmin", GRANTS)["breakGlassAccesses"]["edges"]
        if e["node"]["id"] == grant["id"]
    )
    assert stored["reviewedAt"] and stored["reviewNote"] == "已核实，确属抢救需要"
    assert not session.problems and not session.foreign, (session.problems, session.foreign)
