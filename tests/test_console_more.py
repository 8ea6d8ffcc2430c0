"""The console's education video, learning task, follow-up, protocol, outcome, ICD-10 and figures pages in a real
browser (Debian's headless Chromium through Playwright), against one live server with demo data for the whole
module (tests/test_console_browser.py's serve_console). Each page is used by a role that may, what it shows is
checked against the API and what it writes is read back; a role that may not is not offered the page and is refused
its URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

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
    with serve_console(tmp_path_factory) as base:
        yield base


async def _refused(browser: Browser, base: str, username: str, path: str, key: str) -> None:
    """The role's sidebar does not offer the page, and typing its URL gets the "not yours" page."""
    session = await _session(browser)
    page: Page = session.page
    await _login(session, base, username, path)
    await expect(page.locator("[data-test=not-routed]")).to_be_visible()
    await expect(page.locator(f"[data-menu-key='{key}']")).to_have_count(0)


VIDEOS = """query ($search: String) { editorialVideos(first: 10, search: $search) {
  edges { node { id title videoUrl durationSeconds status } } } }"""


@needs_menus
async def test_a_chief_adds_a_video_and_publishes_it(live_server: str, browser: Browser) -> None:
    title = f"术后康复操 {int(time.time())}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "education", "education.videos")
    await expect(page.locator("[data-test=videos-table]")).to_be_visible()

    await page.click("[data-test=create-video]")
    await page.fill("[data-test=video-form-title]", title)
    await page.fill("[data-test=video-form-url]", "http://video.example.org/rehab.mp4")  # not https: refused
    await page.fill("[data-test=video-form-duration] input", "330")
    await page.click("[data-test=video-form-save]")
    error = page.locator("[data-test=video-form-error]")
    await expect(error).to_contain_text("输入有误")  # BAD_USER_INPUT, in words
    await expect(error).to_contain_text("videoUrl")  # and the field it names
    assert not _api(live_server, "chief", VIDEOS, {"search": title})["editorialVideos"]["edges"]

    await page.fill("[data-test=video-form-url]", "https://video.example.org/rehab.mp4")
    await page.click("[data-test=video-form-save]")
    await expect(page.locator("[data-test=video-dialog]")).to_be_hidden()
    stored = [e["node"] for e in _api(live_server, "chief", VIDEOS, {"search": title})["editorialVideos"]["edges"]]
    assert [(v["title"], v["videoUrl"], v["durationSeconds"], v["status"]) for v in stored] == [
        (title, "https://video.example.org/rehab.mp4", 330, "DRAFT")
    ]
    video = stored[0]["id"]
    row = page.locator("[data-test=videos-table] tr", has_text=title)
    await expect(row).to_contain_text("5:30")
    await expect(page.locator(f"[data-test=video-status-{video}]")).to_have_text("草稿")  # the API's label

    await page.click(f"[data-test=publish-video-{video}]")
    await _confirm_box(page)
    await expect(page.locator(f"[data-test=video-status-{video}]")).to_have_text("已发布")
    await _shot(page, "videos")
    stored = [e["node"] for e in _api(live_server, "chief", VIDEOS, {"search": title})["editorialVideos"]["edges"]]
    assert stored[0]["status"] == "PUBLISHED"
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "physician", "/admin/education/videos", "education.videos")


TASKS = """query { learningTasks(first: 50) { edges { node { id title departmentId dueDate
  materials { kind ref title } progress { total completed } } } } }"""


@needs_menus
async def test_a_department_admin_sets_a_learning_task_and_a_chief_follows_it(
    live_server: str, browser: Browser
) -> None:
    title = f"肛瘘术后护理学习 {int(time.time())}"
    due = (date.today() + timedelta(days=14)).isoformat()
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "deptadmin")
    await _open_menu(page, "learning", "learning.tasks")
    await expect(page.locator("[data-test=tasks-table]")).to_contain_text("结直肠肛门外科")  # the demo's task

    await page.click("[data-test=create-task]")
    await page.fill("[data-test=task-form-title]", title)
    await page.fill("[data-test=task-dialog] .el-date-editor input", due)
    await page.press("[data-test=task-dialog] .el-date-editor input", "Enter")
    await page.click("[data-test=task-add-material]")
    await page.fill("[data-test=task-material-0] [data-test=material-title]", "护理指南")
    await page.fill("[data-test=task-material-0] [data-test=material-ref]", "http://guide.example.org/a")
    await page.click("[data-test=task-form-save]")
    error = page.locator("[data-test=task-form-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("materials")  # the field the API named
    await page.fill("[data-test=task-material-0] [data-test=material-ref]", "https://guide.example.org/a")
    await page.click("[data-test=task-form-save]")
    await expect(page.locator("[data-test=task-dialog]")).to_be_hidden()
    stored = [e["node"] for e in _api(live_server, "deptadmin", TASKS)["learningTasks"]["edges"]]
    mine = [n for n in stored if n["title"] == title]
    assert len(mine) == 1, stored
    task = mine[0]
    assert task["dueDate"] == due
    assert task["materials"] == [{"kind": "link", "ref": "https://guide.example.org/a", "title": "护理指南"}]
    assert task["progress"]["total"] > 0  # the department's staff were assigned it
    progress = page.locator(f"[data-test=task-progress-{task['id']}]")
    await expect(progress).to_contain_text(f"已完成 0 / {task['progress']['total']}")
    await _shot(page, "learning-tasks")
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # a chief follows the tasks but sets none: no create, edit or delete offered
    chief = await _session(browser)
    await _login(chief, live_server, "chief", "/admin/learning/tasks")
    await expect(chief.page.locator("[data-test=tasks-table]")).to_contain_text(title)
    await expect(chief.page.locator("[data-test=create-task]")).to_have_count(0)
    await expect(chief.page.locator(f"[data-test=edit-task-{task['id']}]")).to_have_count(0)

    await _refused(browser, live_server, "physician", "/admin/learning/tasks", "learning.tasks")


PROTOCOLS = "{ followUpProtocols { id name offsets description } }"


@needs_menus
async def test_a_chief_creates_a_follow_up_protocol_and_a_physician_only_reads_them(
    live_server: str, browser: Browser
) -> None:
    name = f"肛瘘术后方案 {int(time.time())}"
    demo = _api(live_server, "chief", PROTOCOLS)["followUpProtocols"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "clinical", "clinical.protocols")
    table = page.locator("[data-test=protocols-table]")
    for protocol in demo:
        await expect(table).to_contain_text(protocol["name"])

    await page.click("[data-test=create-protocol]")
    await page.fill("[data-test=protocol-form-name]", name)
    await page.fill("[data-test=protocol-form-offsets]", "7, a")  # not day counts: refused in the form
    await expect(page.locator("[data-test=protocol-dialog]")).to_contain_text("1 到 3650")
    await expect(page.locator("[data-test=protocol-form-save]")).to_be_disabled()
    await page.fill("[data-test=protocol-form-offsets]", "0")  # a day count the API refuses
    await page.click("[data-test=protocol-form-save]")
    error = page.locator("[data-test=protocol-form-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("offsets")
    await page.fill("[data-test=protocol-form-offsets]", "7, 30，90")
    await page.fill("[data-test=protocol-form-description]", "术后一周、一月、三月")
    await page.click("[data-test=protocol-form-save]")
    await expect(page.locator("[data-test=protocol-dialog]")).to_be_hidden()
    row = table.locator("tr", has_text=name)
    await expect(row).to_contain_text("第 30 天")
    await _shot(page, "protocols")
    stored = [p for p in _api(live_server, "chief", PROTOCOLS)["followUpProtocols"] if p["name"] == name]
    assert [(p["offsets"], p["description"]) for p in stored] == [([7, 30, 90], "术后一周、一月、三月")]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # a physician applies protocols but may not create one: the list without the button
    doctor = await _session(browser)
    await _login(doctor, live_server, "physician", "/admin/clinical/protocols")
    await expect(doctor.page.locator("[data-test=protocols-table]")).to_contain_text(name)
    await expect(doctor.page.locator("[data-test=create-protocol]")).to_have_count(0)


OVERDUE = "{ overdueFollowUps(first: 100) { totalCount edges { node { id dueDate patient { id name } } } } }"
PATIENT_FOLLOW_UPS = "query ($id: ID!) { patient(id: $id) { followUps { id status painScore outcomeText } } }"


@needs_menus
async def test_a_physician_works_through_the_overdue_follow_ups(live_server: str, browser: Browser) -> None:
    before = _api(live_server, "physician", OVERDUE)["overdueFollowUps"]
    assert before["totalCount"] > 0, "the demo has overdue follow-ups"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician")
    await _open_menu(page, "clinical", "clinical.follow-ups")
    total = page.locator("[data-test=follow-ups-total]")
    await expect(total).to_contain_text(str(before["totalCount"]))
    first = before["edges"][0]["node"]
    table = page.locator("[data-test=follow-ups-table]")
    await expect(table).to_contain_text(first["patient"]["name"])
    await expect(table).to_contain_text(first["dueDate"])
    await _shot(page, "follow-ups")

    text = f"电话随访：恢复良好 {int(time.time())}"
    await page.click(f"[data-test=worklist-record-{first['id']}]")
    await page.fill("[data-test=outcome-text-input]", text)
    await page.fill("[data-test=outcome-pain] input", "3")
    await page.click("[data-test=outcome-save]")
    await expect(page.locator("[data-test=outcome-dialog]")).to_have_count(0)
    await expect(page.locator(f"[data-test=worklist-record-{first['id']}]")).to_have_count(0)  # off the list
    await expect(total).to_contain_text(str(before["totalCount"] - 1))
    follow_ups = _api(live_server, "physician", PATIENT_FOLLOW_UPS, {"id": first["patient"]["id"]})["patient"]
    stored = [f for f in follow_ups["followUps"] if f["id"] == first["id"]]
    assert [(f["status"], f["painScore"], f["outcomeText"]) for f in stored] == [("COMPLETED", 3, text)]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


ICD = "query ($s: String!) { icd10Codes(search: $s) { code nameZh nameEn } }"


@needs_menus
async def test_a_physician_looks_up_icd_10_codes(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician")
    await _open_menu(page, "clinical", "clinical.icd")
    table = page.locator("[data-test=icd-table]")
    await page.click("[data-test=icd-common-K64]")  # a chapter the department uses, one click
    expected = _api(live_server, "physician", ICD, {"s": "K64"})["icd10Codes"]
    assert expected
    await expect(table.locator("tbody tr")).to_have_count(len(expected))
    for code in expected:
        await expect(table).to_contain_text(code["code"])
    await page.fill("[data-test=icd-search]", "肛瘘")  # by Chinese name
    await page.click("[data-test=icd-search-button]")
    by_name = _api(live_server, "physician", ICD, {"s": "肛瘘"})["icd10Codes"]
    assert by_name
    await expect(table.locator("tbody tr")).to_have_count(len(by_name))
    await expect(table).to_contain_text(by_name[0]["nameZh"])
    await _shot(page, "icd10")
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


OUTCOMES = """query ($plan: PlanType) { outcomeSummary(planType: $plan) {
  planType suppressed patients followUps meanPainScore } }"""


@needs_menus
async def test_a_chief_reads_the_outcome_summary_charted(live_server: str, browser: Browser) -> None:
    groups = _api(live_server, "chief", OUTCOMES)["outcomeSummary"]
    assert groups, "the demo has completed follow-ups under treatment plans"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "clinical", "clinical.outcomes")
    table = page.locator("[data-test=outcomes-table]")
    await expect(table.locator("tbody tr")).to_have_count(len(groups))
    for group in groups:
        if group["suppressed"]:
            await expect(page.locator(f"[data-test=outcomes-suppressed-{group['planType']}]")).to_be_visible()
        else:
            patients = page.locator(f"[data-test=outcomes-patients-{group['planType']}]")
            await expect(patients).to_have_text(str(group["patients"]))
    if any(not g["suppressed"] for g in groups):
        await expect(page.locator("[data-test=bar-chart]")).to_be_visible()
    await expect(table).to_contain_text("手术治疗" if any(g["planType"] == "SURGERY" for g in groups) else "")
    await page.wait_for_timeout(1500)  # the bars' growing animation ends
    await _shot(page, "outcomes")

    # one plan type: the table follows the filter
    plan = groups[0]["planType"]
    await page.click("[data-test=outcomes-plan-type]")
    label = {"MEDICATION": "药物治疗", "SURGERY": "手术治疗", "TCM": "中医治疗", "LIFESTYLE": "生活方式干预"}.get(
        plan, "其他"
    )
    await page.click(f".el-select-dropdown__item:has-text('{label}')")
    await page.click("[data-test=outcomes-search]")
    only = _api(live_server, "chief", OUTCOMES, {"plan": plan})["outcomeSummary"]
    await expect(table.locator("tbody tr")).to_have_count(len(only))
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


CACHES = "{ cacheStats { namespace keys clearable } }"
CLEARED = """{ operationLogs(first: 10, filter: { operation: "clearCache" }) {
  edges { node { actorUsername entityId result } } } }"""


@needs_menus
async def test_an_admin_reads_the_caches_and_clears_one(live_server: str, browser: Browser) -> None:
    caches = _api(live_server, "admin", CACHES)["cacheStats"]
    clearable = [c["namespace"] for c in caches if c["clearable"]]
    kept = [c["namespace"] for c in caches if not c["clearable"]]
    assert clearable, caches
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin")
    await _open_menu(page, "operations", "operations.caches")
    table = page.locator("[data-test=caches-table]")
    await expect(table.locator("tbody tr")).to_have_count(len(caches))
    for name in kept:  # state, not a cache: no button to clear it
        await expect(page.locator(f"[data-test=clear-cache-{name}]")).to_have_count(0)
    await _shot(page, "caches")
    await page.click(f"[data-test=clear-cache-{clearable[0]}]")
    await _confirm_box(page)
    await expect(page.locator(f"[data-test=cache-keys-{clearable[0]}]")).to_have_text("0")
    logged = [e["node"] for e in _api(live_server, "admin", CLEARED)["operationLogs"]["edges"]]
    assert [(e["actorUsername"], e["entityId"]) for e in logged][:1] == [("admin", clearable[0])]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "deptadmin", "/admin/operations/caches", "operations.caches")


USER_STATS = "{ userStats { accounts withoutRole boundPatients byRole { role accounts } days { day } } }"


@needs_menus
async def test_an_admin_reads_the_user_figures(live_server: str, browser: Browser) -> None:
    stats = _api(live_server, "admin", USER_STATS)["userStats"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin")
    await _open_menu(page, "operations", "operations.users")
    await expect(page.locator("[data-test=stat-accounts]")).to_have_text(str(stats["accounts"]))
    await expect(page.locator("[data-test=stat-without-role]")).to_have_text(str(stats["withoutRole"]))
    await expect(page.locator("[data-test=stat-bound]")).to_have_text(str(stats["boundPatients"]))
    roles = page.locator("[data-test=user-stats-roles] tbody tr")
    await expect(roles).to_have_count(len(stats["byRole"]))
    await expect(page.locator("[data-test=bar-chart]")).to_be_visible()
    await page.wait_for_timeout(1500)  # the bars' growing animation ends
    await _shot(page, "user-figures")

    # more than a year at a time: the API refuses, and the page says which field
    await page.fill(".el-range-input >> nth=0", "2024-01-01")
    await page.fill(".el-range-input >> nth=1", "2026-01-01")
    await page.press(".el-range-input >> nth=1", "Enter")
    await page.click("[data-test=user-stats-search]")
    error = page.locator("[data-test=user-stats-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("(from)")
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "deptadmin", "/admin/operations/users", "operations.users")


SEND = """mutation ($c: ID!, $t: String!) { sendMessage(conversationId: $c, text: $t) { id status } }"""
MESSAGES = """query ($t: String!) { consultationMessages(first: 10, filter: { text: $t }) {
  edges { node { id text status } } } }"""


@needs_menus
async def test_a_department_admin_reviews_held_consultation_messages(live_server: str, browser: Browser) -> None:
    stamp = int(time.time())
    conversation = _api(live_server, "chief", "{ myConversations(first: 1) { edges { node { id } } } }")
    conversation_id = conversation["myConversations"]["edges"][0]["node"]["id"]
    released, hidden = f"祖传秘方能用吗 {stamp}", f"祖传秘方偏方 {stamp}"  # the demo's keyword that holds
    sent = [
        _api(live_server, "chief", SEND, {"c": conversation_id, "t": text})["sendMessage"]
        for text in (released, hidden)
    ]
    assert [m["status"] for m in sent] == ["HELD", "HELD"]

    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "deptadmin")
    await _open_menu(page, "consultations", "consultations.review")
    table = page.locator("[data-test=messages-table]")
    await expect(table).to_contain_text(released)  # the held queue first
    await expect(table).to_contain_text(hidden)
    await expect(page.locator(f"[data-test=message-status-{sent[0]['id']}]")).to_have_text("待审核")  # the API's label
    await _shot(page, "message-review")

    await page.click(f"[data-test=approve-message-{sent[0]['id']}]")
    await _confirm_box(page)
    await expect(table).not_to_contain_text(released)  # decided: off the queue
    await page.click(f"[data-test=hide-message-{sent[1]['id']}]")
    await _confirm_box(page)
    await expect(table).not_to_contain_text(hidden)
    stored = {
        m["node"]["text"]: m["node"]["status"]
        for m in _api(live_server, "deptadmin", MESSAGES, {"t": str(stamp)})["consultationMessages"]["edges"]
    }
    assert stored == {released: "VISIBLE", hidden: "HIDDEN"}
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "physician", "/admin/consultations/review", "consultations.review")


RECORDS = """query ($id: ID!) { patient(id: $id) {
  examReports { id kind examDate conclusion voided { reason by } }
  treatmentPlans { id planType status description version voided { reason } } } }"""
FIRST_PATIENT = "{ patients(first: 1) { edges { node { id name } } } }"


async def _pick(page: Page, select: str, label: str, *, exact: bool = True) -> None:
    """Choose an option of an Element Plus select by its label (the whole label unless `exact` is off).

    Done when the dropdown has closed and the select shows the label. The dropdown closes with a transition: on a slow
    machine its options still lie over the next field and take the next click (CI, 2026-12-02). It also opens with one:
    a click can land while the popper is still moving into place and hit no option, leaving it open (CI, 2026-12-02,
    the edited plan's status); the option is then clicked again.
    """
    text = re.compile(f"^\\s*{re.escape(label)}\\s*$") if exact else label
    options = page.locator(".el-select-dropdown__item:visible")
    await page.click(select)
    for _ in range(3):
        await options.filter(has_text=text).first.click()
        with contextlib.suppress(AssertionError):
            await expect(options).to_have_count(0, timeout=3000)
            break
    await expect(options).to_have_count(0)
    await expect(page.locator(select)).to_contain_text(label)


@needs_menus
async def test_a_doctor_adds_an_exam_report_and_a_plan_amends_and_voids_them(
    live_server: str, browser: Browser
) -> None:
    stamp = int(time.time())
    patient = _api(live_server, "physician", FIRST_PATIENT)["patients"]["edges"][0]["node"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician", f"/admin/clinical/patients/{patient['id']}")
    await expect(page.locator("[data-test=patient-name]")).to_have_text(patient["name"])

    await page.click(".el-tabs__item:has-text('检查')")
    await page.click("[data-test=add-exam]")
    await _pick(page, "[data-test=exam-form-kind]", "肛门镜")
    today = date.today().isoformat()
    await page.fill("[data-test=exam-dialog] .el-date-editor input", today)
    await page.press("[data-test=exam-dialog] .el-date-editor input", "Enter")
    await page.fill("[data-test=exam-form-conclusion]", f"内痔 II 度 {stamp}")
    await page.click("[data-test=exam-form-save]")
    await expect(page.locator("[data-test=exam-dialog]")).to_have_count(0)
    exams = page.locator("[data-test=exams-table]")
    await expect(exams).to_contain_text(f"内痔 II 度 {stamp}")
    await expect(exams).to_contain_text("肛门镜")  # the API's label
    stored = _api(live_server, "physician", RECORDS, {"id": patient["id"]})["patient"]
    exam = next(e for e in stored["examReports"] if e["conclusion"] == f"内痔 II 度 {stamp}")
    assert (exam["kind"], exam["examDate"]) == ("ANOSCOPY", today)

    await page.click(".el-tabs__item:has-text('治疗方案')")
    await page.click("[data-test=add-plan]")
    await _pick(page, "[data-test=plan-form-type]", "手术治疗")
    await _pick(page, "[data-test=plan-form-status]", "进行中")
    await page.fill("[data-test=plan-form-description]", f"吻合器痔上黏膜环切术 {stamp}")
    await page.click("[data-test=plan-form-save]")
    await expect(page.locator("[data-test=plan-dialog]")).to_have_count(0)
    plans = page.locator("[data-test=plans-table]")
    await expect(plans).to_contain_text(f"吻合器痔上黏膜环切术 {stamp}")
    stored = _api(live_server, "physician", RECORDS, {"id": patient["id"]})["patient"]
    plan = next(p for p in stored["treatmentPlans"] if p["description"] == f"吻合器痔上黏膜环切术 {stamp}")
    assert (plan["planType"], plan["status"]) == ("SURGERY", "ACTIVE")

    await page.click(f"[data-test=edit-plan-{plan['id']}]")  # completed: signed off
    await _pick(page, "[data-test=plan-form-status]", "已完成")
    await page.click("[data-test=plan-form-save]")
    await expect(page.locator(f"[data-test=plan-status-{plan['id']}]")).to_have_text("已完成")
    await page.click(f"[data-test=edit-plan-{plan['id']}]")  # a signed-off plan changes only with a reason
    await page.fill("[data-test=plan-form-description]", f"PPH 术 {stamp}")
    await page.click("[data-test=plan-form-save]")
    error = page.locator("[data-test=plan-form-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("(reason)")
    await page.fill("[data-test=plan-form-reason]", "术式名称更正")
    await page.click("[data-test=plan-form-save]")
    await expect(plans).to_contain_text(f"PPH 术 {stamp}")
    await _shot(page, "patient-plans")
    stored = _api(live_server, "physician", RECORDS, {"id": patient["id"]})["patient"]
    plan = next(p for p in stored["treatmentPlans"] if p["id"] == plan["id"])
    assert (plan["status"], plan["description"], plan["version"]) == ("COMPLETED", f"PPH 术 {stamp}", 3)

    await page.click(".el-tabs__item:has-text('检查')")
    await page.click(f"[data-test=void-exam-{exam['id']}]")
    await _confirm_box(page, "录入到错误的患者")
    await expect(page.locator(f"[data-test=void-exam-{exam['id']}]")).to_have_count(0)
    voided = _api(live_server, "chief", RECORDS, {"id": patient["id"]})["patient"]["examReports"]
    assert [e["voided"]["reason"] for e in voided if e["id"] == exam["id"]] == ["录入到错误的患者"]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


REGISTER = """mutation ($name: String!, $phone: String!) {
  registerPatient(input: { name: $name, phone: $phone }, allowDuplicate: true) { id } }"""
MERGED = "query ($id: ID!) { patient(id: $id) { mergedIntoId voided { reason } } }"


@needs_menus
async def test_a_chief_merges_a_duplicate_patient_and_undoes_it(live_server: str, browser: Browser) -> None:
    stamp = int(time.time())
    name = f"合并测试{stamp % 100000}"
    phone = f"137{stamp % 100000000:08d}"
    keep = _api(live_server, "chief", REGISTER, {"name": name, "phone": phone})["registerPatient"]["id"]
    duplicate = _api(live_server, "chief", REGISTER, {"name": name, "phone": phone})["registerPatient"]["id"]
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief", f"/admin/clinical/patients/{keep}")
    await expect(page.locator("[data-test=patient-name]")).to_have_text(name)
    await page.click("[data-test=merge-patient]")
    await page.fill("[data-test=patient-picker] input", phone)
    await page.click(f"[data-test=patient-option-{duplicate}]")
    await page.click("[data-test=merge-confirm]")  # no reason yet: asked in the form
    await expect(page.locator("[data-test=merge-error]")).to_be_visible()
    await page.fill("[data-test=merge-reason]", "同一患者重复建档")
    await page.click("[data-test=merge-confirm]")
    await expect(page.locator("[data-test=merge-dialog]")).to_have_count(0)
    merges = page.locator("[data-test=merges]")
    await expect(merges).to_contain_text("同一患者重复建档")
    await _shot(page, "patient-merge")
    stored = _api(live_server, "chief", MERGED, {"id": duplicate})["patient"]
    assert stored["mergedIntoId"] == keep and "同一患者重复建档" in stored["voided"]["reason"]

    await page.click("[data-test^=undo-merge-]")
    await _confirm_box(page, "合并错了，并非同一人")
    await expect(merges).to_have_count(0)
    stored = _api(live_server, "chief", MERGED, {"id": duplicate})["patient"]
    assert stored == {"mergedIntoId": None, "voided": None}
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # a physician may not merge: no button on a patient of theirs
    own = _api(live_server, "physician", FIRST_PATIENT)["patients"]["edges"][0]["node"]
    doctor = await _session(browser)
    await _login(doctor, live_server, "physician", f"/admin/clinical/patients/{own['id']}")
    await expect(doctor.page.locator("[data-test=patient-name]")).to_have_text(own["name"])
    await expect(doctor.page.locator("[data-test=merge-patient]")).to_have_count(0)


SCHEDULE = "query ($f: ScheduleFilter) { schedules(first: 100, filter: $f) { edges { node { id status } } } }"


@needs_menus
async def test_a_chief_closes_a_clinic_session_to_bookings_and_reopens_it(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "appointments", "appointments.schedules")
    close = page.locator("[data-test^=close-]").first
    await expect(close).to_be_visible()  # the demo's open sessions this week
    schedule = (await close.get_attribute("data-test") or "").removeprefix("close-")
    await close.click()
    await _confirm_box(page, "主任外出会诊")
    slot = page.locator(f"[data-test=session-{schedule}]")
    await expect(slot).to_contain_text("停止预约")
    await expect(page.locator(f"[data-test=reopen-{schedule}]")).to_be_visible()

    monday = date.today() - timedelta(days=date.today().weekday())
    week = {"from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()}  # the calendar's week

    def status() -> str:
        edges = _api(live_server, "chief", SCHEDULE, {"f": week})["schedules"]["edges"]
        return next(str(e["node"]["status"]) for e in edges if e["node"]["id"] == schedule)

    assert status() == "CLOSED"
    await _shot(page, "schedule-closed")
    await page.click(f"[data-test=reopen-{schedule}]")
    await _confirm_box(page)
    await expect(page.locator(f"[data-test=close-{schedule}]")).to_be_visible()
    assert status() == "OPEN"
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # a physician books and sees the calendar, but closes nothing
    doctor = await _session(browser)
    await _login(doctor, live_server, "physician", "/admin/appointments/schedules")
    await expect(doctor.page.locator("[data-test^=session-]").first).to_be_visible()
    await expect(doctor.page.locator("[data-test^=close-]")).to_have_count(0)


TARGETS = "{ jobTargets { name parameters { name required } } }"
JOBS = "{ jobs(first: 100) { edges { node { id name target cron enabled } } } }"


@needs_menus
async def test_an_admin_creates_pauses_and_deletes_a_scheduled_job(live_server: str, browser: Browser) -> None:
    name = f"控制台任务 {int(time.time())}"
    target = next(
        g["name"]
        for g in _api(live_server, "admin", TARGETS)["jobTargets"]
        if not any(p["required"] for p in g["parameters"])
    )
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin")
    await _open_menu(page, "operations", "operations.jobs")
    await page.click("[data-test=create-job]")
    await page.fill("[data-test=job-form-name]", name)
    await _pick(page, "[data-test=job-form-target]", target, exact=False)
    await page.fill("[data-test=job-form-args]", "[1, 2]")  # not a JSON object: refused in the form
    await expect(page.locator("[data-test=job-form-save]")).to_be_disabled()
    await page.fill("[data-test=job-form-args]", "{}")
    await page.fill("[data-test=job-form-cron]", "every night")  # the API checks the expression
    await page.click("[data-test=job-form-save]")
    error = page.locator("[data-test=job-form-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("(cron)")
    await page.fill("[data-test=job-form-cron]", "30 3 * * *")
    await page.click("[data-test=job-form-save]")
    await expect(page.locator("[data-test=job-dialog]")).to_have_count(0)
    table = page.locator("[data-test=jobs-table]")
    await expect(table).to_contain_text(name)
    stored = [j["node"] for j in _api(live_server, "admin", JOBS)["jobs"]["edges"] if j["node"]["name"] == name]
    assert [(j["target"], j["cron"], j["enabled"]) for j in stored] == [(target, "30 3 * * *", True)]
    job = stored[0]["id"]
    await _shot(page, "jobs-edit")

    await page.click(f"[data-test=pause-job-{job}]")
    await _confirm_box(page)
    await expect(page.locator(f"[data-test=resume-job-{job}]")).to_be_visible()
    stored = [j["node"] for j in _api(live_server, "admin", JOBS)["jobs"]["edges"] if j["node"]["id"] == job]
    assert stored[0]["enabled"] is False
    await page.click(f"[data-test=delete-job-{job}]")
    await _confirm_box(page)
    await expect(table).not_to_contain_text(name)
    assert not [j for j in _api(live_server, "admin", JOBS)["jobs"]["edges"] if j["node"]["id"] == job]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "deptadmin", "/admin/operations/jobs", "operations.jobs")


ROLES = "{ roles { key name dataScope builtin description } }"


@needs_menus
async def test_an_admin_creates_edits_and_deletes_a_role(live_server: str, browser: Browser) -> None:
    key = f"nurse_lead_{int(time.time()) % 100000}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin")
    await _open_menu(page, "system", "system.roles")
    table = page.locator("[data-test=roles-table]")
    for role in _api(live_server, "admin", ROLES)["roles"]:
        await expect(table).to_contain_text(role["key"])
    await page.click("[data-test=create-role]")
    await page.fill("[data-test=role-form-key]", "Nurse Lead")  # not a key: the API refuses, naming it
    await page.fill("[data-test=role-form-name]", "护士长")
    await _pick(page, "[data-test=role-form-scope]", "本科室")
    await page.fill("[data-test=role-form-description]", "病区护理管理")
    await page.click("[data-test=role-form-save]")
    error = page.locator("[data-test=role-form-error]")
    await expect(error).to_contain_text("输入有误")
    await expect(error).to_contain_text("(key)")
    await page.fill("[data-test=role-form-key]", key)
    await page.click("[data-test=role-form-save]")
    await expect(page.locator("[data-test=role-dialog]")).to_have_count(0)
    await expect(page.locator(f"[data-test=role-scope-{key}]")).to_have_text("本科室")

    def stored() -> list[tuple[str, str, str]]:
        roles = _api(live_server, "admin", ROLES)["roles"]
        return [(r["name"], r["dataScope"], r["description"]) for r in roles if r["key"] == key]

    assert stored() == [("护士长", "DEPARTMENT", "病区护理管理")]
    await page.click(f"[data-test=edit-role-{key}]")
    await _pick(page, "[data-test=role-form-scope]", "本科室及下级")
    await page.click("[data-test=role-form-save]")
    await expect(page.locator("[data-test=role-dialog]")).to_have_count(0)
    await expect(page.locator(f"[data-test=role-scope-{key}]")).to_have_text("本科室及下级")
    assert stored() == [("护士长", "DEPARTMENT_AND_BELOW", "病区护理管理")]
    await _shot(page, "roles-edit")
    await page.click(f"[data-test=delete-role-{key}]")
    await _confirm_box(page)
    await expect(table).not_to_contain_text(key)
    assert stored() == []
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    await _refused(browser, live_server, "deptadmin", "/admin/system/roles", "system.roles")


EDITORIAL = "query ($s: String) { editorialArticles(first: 10, search: $s) { edges { node { id title } } } }"


@needs_menus
async def test_an_article_preview_follows_the_typing_then_shows_the_servers_rendering(
    live_server: str, browser: Browser
) -> None:
    title = f"术后饮食 {int(time.time())}"
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "education", "education.articles")
    await page.click("[data-test=create-article]")
    await page.fill("[data-test=article-title]", title)
    preview = page.locator("[data-test=article-preview]")
    await page.fill("[data-test=article-body]", "## 饮食要点\n\n- **多喝水**\n\n<script>alert(1)</script>")
    await expect(preview.locator("h2")).to_have_text("饮食要点")  # live, nothing saved yet
    await expect(preview.locator("li strong")).to_have_text("多喝水")
    await expect(preview.locator("script")).to_have_count(0)
    await expect(preview).to_contain_text("<script>alert(1)</script>")  # typed HTML shows as text
    await expect(page.locator("[data-test=preview-kind]")).to_contain_text("即时预览")
    assert not _api(live_server, "chief", EDITORIAL, {"s": title})["editorialArticles"]["edges"]
    await page.fill("[data-test=article-body]", "## 饮食要点\n\n- **多喝水**\n- 少吃辛辣")
    await expect(preview.locator("li")).to_have_count(2)
    await _shot(page, "article-live-preview")

    await page.click("[data-test=article-save]")
    await expect(page.locator("[data-test=preview-kind]")).to_contain_text("服务器渲染")
    await expect(preview.locator("h2")).to_have_text("饮食要点")  # now the server's rendering
    await expect(preview.locator("li")).to_have_count(2)
    # the server's rendering can show before the save's answer is in: the stored article is looked for until then
    stored: list[str] = []
    for _ in range(50):
        edges = _api(live_server, "chief", EDITORIAL, {"s": title})["editorialArticles"]["edges"]
        stored = [e["node"]["title"] for e in edges]
        if stored:
            break
        await asyncio.sleep(0.2)
    assert stored == [title]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)


CODES = "query ($id: ID!) { patientBindingCodes(patientId: $id) { state } }"
ISSUED = """{ operationLogs(first: 50, filter: { operation: "issuePatientBindingCode" }) {
  edges { node { actorUsername entityId result } } } }"""


CREATE_USER = """mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }"""
CHANGE_PASSWORD = (
    """mutation ($old: String!, $new: String!) { changePassword(oldPassword: $old, newPassword: $new) { id } }"""
)


def _roleless_user(base: str) -> str:
    """An admin creates a staff account with no role; it sets the demo password (its first login asks for one)."""
    username = f"norole{int(time.time() * 1000) % 10**9}"
    first = "Temporary#2026a"
    _api(base, "admin", CREATE_USER, {"input": {"username": username, "displayName": "无角色", "password": first}})
    with httpx.Client(base_url=base, timeout=20) as http:
        login = http.post(
            "/graphql",
            json={
                "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
                "variables": {"u": username, "p": first},
            },
        ).json()
        token = login["data"]["login"]["accessToken"]
        changed = http.post(
            "/graphql",
            json={"query": CHANGE_PASSWORD, "variables": {"old": first, "new": DEMO_PASSWORD}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert "errors" not in changed, changed
    return username


STATS = """query ($g: ServiceStatsGroup!, $from: DateTime) { serviceStats(groupBy: $g, from: $from) {
  requests items { key userName requests } } }"""


@needs_menus
async def test_an_admin_reads_the_service_figures_by_operation_staff_and_role(
    live_server: str, browser: Browser
) -> None:
    _api(live_server, "physician", "{ me { id } }")  # the physician has made requests too
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "admin")
    await _open_menu(page, "operations", "operations.stats")
    table = page.locator("[data-test=stats-table]")
    await expect(table).to_contain_text("me")  # by operation: the console's own queries
    await page.click("[data-test=stats-group-STAFF]")
    await expect(table).to_contain_text("王管理 Wang (admin)")
    await expect(table).to_contain_text("陈医生 Chen (physician)")
    await _shot(page, "service-stats")
    day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    by_staff = _api(live_server, "admin", STATS, {"g": "STAFF", "from": day_ago})["serviceStats"]
    assert "王管理 Wang (admin)" in {item["userName"] for item in by_staff["items"]}
    await page.click("[data-test=stats-group-ROLE]")
    await expect(page.locator("[data-test=stats-key-0]")).not_to_be_empty()
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # only admins read the figures: a department admin is neither offered the page nor let in by its URL
    await _refused(browser, live_server, "deptadmin", "/admin/operations/stats", "operations.stats")


BULK_MINE = "{ myFhirExports { edges { node { id status files { type count } } } } }"


@needs_menus
async def test_a_chief_runs_a_fhir_bulk_export_and_downloads_its_files(live_server: str, browser: Browser) -> None:
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "patients", "patients.fhir-bulk")
    await expect(page.locator("[data-test=bulk-table]")).to_be_visible()
    before = len(_api(live_server, "chief", BULK_MINE)["myFhirExports"]["edges"])
    await page.click("[data-test=bulk-start]")  # the first department offered: the chief's own
    status = page.locator("[data-test=bulk-status-0]")
    await expect(status).to_have_text("已完成", timeout=60_000)  # followed until the job has written its files
    await _shot(page, "fhir-bulk-export")
    (done, *_) = [e["node"] for e in _api(live_server, "chief", BULK_MINE)["myFhirExports"]["edges"]]
    assert done["status"] == "COMPLETED" and len(_api(live_server, "chief", BULK_MINE)["myFhirExports"]["edges"]) == (
        before + 1
    )
    patients = next(f for f in done["files"] if f["type"] == "Patient")

    # the Patient file, fetched with the session's token and saved: one resource per line, as many as listed
    async with page.expect_download() as waiting:
        await page.click("[data-test=bulk-file-0-Patient]")
    saved = await (await waiting.value).path()
    text = await asyncio.to_thread(Path(saved).read_text, encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line]
    assert len(lines) == patients["count"] and {r["resourceType"] for r in lines} == {"Patient"}

    # deleted (asked first): gone from the page and from the API
    await page.click("[data-test=bulk-cancel-0]")
    await _confirm_box(page)
    await expect(page.locator("[data-test=bulk-table]")).not_to_contain_text("已完成")
    assert done["id"] not in str(_api(live_server, "chief", BULK_MINE))
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # a staff account with no role is neither offered the page nor let in by its URL
    await _refused(browser, live_server, _roleless_user(live_server), "/admin/patients/fhir-bulk", "patients.fhir-bulk")


@needs_menus
async def test_a_physician_issues_a_binding_code(live_server: str, browser: Browser) -> None:
    stamp = int(time.time())
    name = f"绑定测试{stamp % 100000}"
    phone = f"136{stamp % 100000000:08d}"
    patient = _api(live_server, "physician", REGISTER, {"name": name, "phone": phone})["registerPatient"]["id"]
    before = len(_api(live_server, "admin", ISSUED)["operationLogs"]["edges"])
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "physician")
    await _open_menu(page, "patients", "patients.binding")
    await expect(page.locator("[data-test=issue-binding-code]")).to_be_disabled()  # no patient yet
    await page.fill("[data-test=patient-picker] input", phone)
    await page.click(f"[data-test=patient-option-{patient}]")
    await page.click("[data-test=issue-binding-code]")
    table = page.locator("[data-test=binding-codes-table]")
    await expect(table).to_contain_text(name)
    code = (await page.locator("[data-test=binding-code-0]").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9]{10}", code), code
    await expect(page.locator("[data-test=binding-expires-0]")).not_to_be_empty()
    await expect(page.locator("[data-test=binding-state-0]")).to_have_text("有效")  # the patient's history
    await _shot(page, "binding-codes")

    # the code is revoked (asked first): the history shows it expired, and the API refuses to redeem it
    await page.click("[data-test=revoke-binding-codes]")
    await _confirm_box(page)
    await expect(page.locator("[data-test=binding-state-0]")).to_have_text("已失效")
    await expect(page.locator("[data-test=revoke-binding-codes]")).to_be_disabled()
    listed = _api(live_server, "physician", CODES, {"id": patient})["patientBindingCodes"]
    assert [c["state"] for c in listed] == ["EXPIRED"], listed
    assert not session.problems and not session.foreign, (session.problems, session.foreign)

    # what is stored (the code only as its digest): the issue in the operation log, by the physician
    logged = [e["node"] for e in _api(live_server, "admin", ISSUED)["operationLogs"]["edges"]]
    assert len(logged) == before + 1, logged
    assert (logged[0]["actorUsername"], logged[0]["result"]) == ("physician", "OK")
    assert code not in str(logged)  # never the code itself

    # a staff account without a role has neither page: not offered, and refused the URLs
    username = _roleless_user(live_server)
    await _refused(browser, live_server, username, "/admin/patients/binding", "patients.binding")
    await _refused(browser, live_server, username, "/admin/patients/export", "patients.export")


PATIENTS = "{ patients(first: 5) { edges { node { id name } } } }"
BUNDLE = "query ($id: ID!) { patientFhirBundle(id: $id) }"


@needs_menus
async def test_a_chief_exports_a_patients_fhir_record(live_server: str, browser: Browser) -> None:
    patient = _api(live_server, "chief", PATIENTS)["patients"]["edges"][0]["node"]
    bundle = _api(live_server, "chief", BUNDLE, {"id": patient["id"]})["patientFhirBundle"]
    types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert types["Patient"] == 1, types
    session = await _session(browser)
    page = session.page
    await _login(session, live_server, "chief")
    await _open_menu(page, "patients", "patients.export")
    await expect(page.locator("[data-test=fhir-export]")).to_be_disabled()  # no patient yet
    await page.fill("[data-test=patient-picker] input", patient["name"])
    await page.click(f"[data-test=patient-option-{patient['id']}]")
    await page.click("[data-test=fhir-export]")
    result = page.locator("[data-test=fhir-result]")
    await expect(result).to_contain_text(patient["name"])
    await expect(page.locator("[data-test=fhir-total]")).to_contain_text(str(len(bundle["entry"])))
    for kind, count in types.items():  # exactly the API's resources, by type
        await expect(page.locator(f"[data-test=fhir-count-{kind}]")).to_have_text(str(count))
    await expect(page.locator("[data-test=fhir-types-table] tbody tr")).to_have_count(len(types))
    await _shot(page, "fhir-export")

    async with page.expect_download() as waiting:
        await page.click("[data-test=fhir-download]")
    download = await waiting.value
    assert download.suggested_filename == f"patient-{patient['id']}.fhir.json"
    saved = json.loads(await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8"))
    assert saved["resourceType"] == "Bundle"
    assert [e["resource"] for e in saved["entry"]] == [e["resource"] for e in bundle["entry"]]
    assert not session.problems and not session.foreign, (session.problems, session.foreign)
