"""Browser tests: Python Playwright driving Debian's Chromium against a real daphne and worker.

The browser is the system's /usr/bin/chromium (`apt-get install chromium`); Playwright's own
download (`playwright install`) is never used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.processes import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "screenshots"


# Module-scoped: Playwright's sync API keeps an asyncio loop running on the test thread, and
# Django refuses ORM calls while one runs. For this module's tests (their own ORM calls and the
# database flush after each) the guard is lifted; it comes back, and the loop is gone, before
# other modules run. The platform's processes copied their environment (worker_env) before.
@pytest.fixture(scope="module")
def browser(worker_env, daphne_server):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _browser_first(browser):
    """Every test here starts the browser (and lifts the guard) before its database fixtures run."""


@pytest.fixture
def new_page(browser, daphne_server):
    """Open a page in a fresh browser context (its own cookies and sessionStorage)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 860):
        context = browser.new_context(base_url=daphne_server.url, viewport={"width": width, "height": height})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
