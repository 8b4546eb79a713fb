"""Browser tier: a real headless Chromium (Debian's `chromium`, driven by Playwright's Python API)
against the real `loraledger serve` process (the harness of tests/e2e, `make_server`).

Each test gets a fresh browser context (no cookies shared) and saves a screenshot under its
tmp path. Without /usr/bin/chromium the tier skips on a developer's machine and fails in CI
(`CI` or `BROWSER_TESTS_REQUIRED` set; `.ci/run` sets the latter and installs the package when
it is missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LedgerServer

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Every browser wait is bounded; the live-update contract (CONTRACT §11) is 2 seconds.
PAGE_TIMEOUT_MS = 15_000
LIVE_WITHIN_MS = 2_000

REQUIRED = bool(os.environ.get("CI") or os.environ.get("BROWSER_TESTS_REQUIRED"))

if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("CI needs /usr/bin/chromium for the browser tests (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport=DESKTOP, timezone_id="Europe/Paris", locale="en-GB")
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A tab that saves a screenshot of what it shows when the test ends (pass or fail)."""
    tab = context.new_page()
    yield tab
    tab.screenshot(path=str(tmp_path / f"{request.node.name}.png"), full_page=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_ui(page: Page, server: LedgerServer, path: str = "/ui/") -> Page:
    page.goto(server.base_url + path)
    return page
