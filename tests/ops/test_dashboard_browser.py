"""The ops dashboard in a real Chromium: a staff member watches its figures change as a worker runs jobs."""

from __future__ import annotations

import re

import pytest

from inference.services.jobs import job_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

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


@pytest.fixture
def page(daphne_server, celery_worker, monkeypatch):
    """A Chromium page; Django's async guard is lifted only while it lives, after daphne and the worker started.

    Playwright's sync API keeps an event loop on this thread; the ORM calls between browser steps are plain sync code.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=daphne_server.url)
        context.set_default_timeout(20_000)
        yield context.new_page()
        context.close()
        browser.close()


def test_the_dashboard_updates_live_while_jobs_run(page, django_user_model, owner, echo_model):
    from playwright.sync_api import expect

    django_user_model.objects.create_superuser(username="operator", email="op@example.com", password="pw-op-12345")
    page.goto("/ops/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw-op-12345")
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/ops/$"))
    expect(page.locator("#updated")).to_have_attribute("data-state", "ok")
    expect(page.locator("#jobs-last-minute")).to_have_text("0")
    expect(page.locator("#workers-online")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    assert max(_bar_heights(page, "#chart-jobs")) == 0  # 60 bars are drawn, all flat before any job ran
    expect(page.locator("#errors")).to_have_text("No failed jobs.")  # a sentence, not bare headers
    expect(page.locator("#top-users")).to_have_text("No jobs in the last hour.")

    for n in range(3):
        job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": f"job {n}"}]})

    # No reload: the page's own polling brings the new figures in.
    expect(page.locator("#jobs-last-minute")).to_have_text("3", timeout=20_000)
    expect(page.locator("#top-users")).to_contain_text("owner")
    expect(page.locator("#top-models")).to_contain_text("echo")
    heights = _bar_heights(page, "#chart-jobs")
    assert len(heights) == 60
    assert heights[-1] > 0  # this minute's bar rose with the three jobs


def _bar_heights(page, chart: str) -> list[float]:
    return page.eval_on_selector_all(
        f"{chart} rect:not(.errors)", "bars => bars.map(b => Number(b.getAttribute('height')))"
    )
