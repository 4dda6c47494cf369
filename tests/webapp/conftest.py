"""The web app in a real browser (issue 19, item 3): the distribution's Chromium driven by Playwright against
a real `threadstore serve` on SQLite (an expensive check runs once, on one backend). One server and one
browser for the whole run; every test gets a user of its own and a fresh browser context, whose console
errors, failed requests and requests to other hosts fail the test.

Without Chromium the tests are skipped with a banner at the end of the run, and fail when `CI` is set."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Playwright, ViewportSize, async_playwright, expect

from tests.harness.banner import skipped_suite
from tests.harness.databases import new_user
from tests.harness.processes import ServeProcess
from tests.webapp.chromium import find_chromium, launch_args
from tests.webapp.ui import TIMEOUT_MS, Store
from tests.webapp.watch import PageWatch
from threadstore.auth import issue_token

# Fast keep-alives and polls, so a reconnecting page catches up quickly.
SERVER_SETTINGS = {"event_keep_alive_seconds": 1, "event_poll_interval_seconds": 0.2}

_missing: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = _missing.get("chromium")
    if reason:
        remedy = "Install it (apt-get install chromium; scripts/test does so as root) or set THREADSTORE_CHROMIUM."
        skipped_suite(terminalreporter, "BROWSER", reason, remedy)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remembers whether the test itself failed: its page's problems are then reported with it, not again."""
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = find_chromium()
    if found is None:
        named = os.environ.get("THREADSTORE_CHROMIUM")
        looked = f"THREADSTORE_CHROMIUM={named} is not executable" if named else "looked for chromium, chromium-browser"
        message = f"no Chromium ({looked})"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}: the browser suite is required.")
        _missing["chromium"] = message
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as started:
        yield started


@pytest.fixture(scope="session")
async def browser(chromium_path: str, playwright: Playwright) -> AsyncIterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True, args=launch_args())
    try:
        yield launched
    finally:
        await launched.close()


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServeProcess]:
    async with ServeProcess(tmp_path_factory.mktemp("webapp"), settings=SERVER_SETTINGS) as started:
        yield started


@pytest.fixture
def user() -> str:
    return new_user()


@pytest.fixture
def token(server: ServeProcess, user: str) -> str:
    return issue_token(server.api.jwt_secret, user, None)


@pytest.fixture
def watch(server: ServeProcess) -> PageWatch:
    return PageWatch(server.base_url)


@pytest.fixture
def viewport() -> ViewportSize:
    """A desktop window; a test of the phone layout overrides it."""
    return {"width": 1280, "height": 800}


@pytest.fixture
async def context(
    request: pytest.FixtureRequest, browser: Browser, server: ServeProcess, watch: PageWatch, viewport: ViewportSize
) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(base_url=server.base_url, viewport=viewport, locale="en-US")
    created.set_default_timeout(TIMEOUT_MS)
    watch.attach(created)
    try:
        yield created
        if request.node.stash.get(_FAILED, False):
            print("the page's problems:", *watch.problems, sep="\n")
            return
        # Checked before the context closes: closing aborts the pages' requests, which is no fault of theirs.
        assert not watch.problems, "the page misbehaved:\n" + "\n".join(watch.problems)
    finally:
        await created.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def store(server: ServeProcess, user: str) -> Store:
    return Store(server.api, user)
