"""The console's education video, learning task, follow-up, protocol, outcome, ICD-10 and figures pages in a real
browser (Debian's headless Chromium through Playwright), against one live server with demo data for the whole
module (tests/test_console_browser.py's serve_console). Each page is used by a role that may, what it shows is
checked against the API and what it writes is read back; a role that may not is not offered the page and is refused
its URL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.test_console_browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
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


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


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
