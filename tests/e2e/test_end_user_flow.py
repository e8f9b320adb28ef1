"""An end user's first visit, in a real browser: sign up, chat, stop, reload, history, privacy, keys."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from inference.models import AIModel, Job
from web.models import Conversation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

WORDS = ["hello", "streaming", "world"]
FULL_ANSWER = " ".join(WORDS[i % len(WORDS)] for i in range(120))


@pytest.fixture
def slow_echo(db):
    """A chat model answering 120 words at 20 words a second: six seconds to watch."""
    return AIModel.objects.create(
        slug="echo",
        display_name="Echo",
        task="chat",
        backend="echo",
        config={"tokens": 120, "tokens_per_second": 20},
        max_input_chars=2000,
        max_output_tokens=500,
    )


def sign_up(page, username: str) -> None:
    page.goto("/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-pass-9")
    page.get_by_label("Password confirmation").fill("a-long-pass-9")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/chat/$"))


def send(page, text: str, max_tokens: str = "") -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Max tokens").fill(max_tokens)
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))


def last_answer(page):
    return page.locator(".msg-assistant").last


def answer_text(page) -> str:
    return last_answer(page).locator("[data-answer]").inner_text().strip()


def test_an_end_user_chats_stops_reloads_and_finds_it_all_in_history(
    new_page, screenshot, slow_echo, celery_worker, daphne_server
):
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_up(page, "ada")
    # The welcome note sits in the conversation's column, the sidebar beside it (it took a grid cell of its own).
    expect(page.locator(".chat-main .flash")).to_contain_text("Welcome, ada")
    sidebar, conversation = page.locator(".chat-sidebar").bounding_box(), page.locator(".chat-main").bounding_box()
    assert sidebar["x"] == 0
    assert conversation["x"] >= sidebar["width"]
    assert conversation["y"] == sidebar["y"]
    screenshot(page, "chat-new")

    # The answer streams in: several visible steps before it is done.
    send(page, "hello streaming world")
    answer = last_answer(page)
    expect(answer.locator("[data-generating]")).to_be_visible()
    seen: list[str] = []
    while answer.get_attribute("data-finished") != "true" and len(seen) < 3:
        text = answer_text(page)
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.1)
    assert len(seen) >= 2, f"the answer did not stream in steps: {seen}"
    assert answer.get_attribute("data-finished") == "false"
    screenshot(page, "chat-streaming")

    # A reload mid-answer resumes where it was: nothing doubled, nothing missing.
    before_reload = answer_text(page)
    page.reload()
    resumed = answer_text(page)
    assert resumed.startswith(before_reload[: len(before_reload) // 2])
    expect(last_answer(page)).to_have_attribute("data-finished", "true", timeout=20_000)
    assert answer_text(page) == FULL_ANSWER
    expect(last_answer(page).locator("[data-status-badge]")).to_have_text("Succeeded")
    expect(last_answer(page).locator("[data-generating]")).to_be_hidden()

    # Stop keeps the partial answer, and it is still there after a reload.
    send(page, "stop me please")
    answer = last_answer(page)
    expect(answer.locator("[data-answer]")).not_to_be_empty()
    answer.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-finished", "true")
    expect(answer.locator("[data-status-badge]")).to_have_text("Canceled")
    partial = answer_text(page)
    assert partial
    assert len(partial.split()) < 120
    expect(answer.locator("[data-error]")).to_contain_text("Stopped")
    page.reload()
    assert answer_text(page).startswith(partial)
    assert len(answer_text(page).split()) < 120

    # Model output is text: a <script> in an answer is shown, never run.
    send(page, "<script>alert(1)</script> **bold** <img src=x onerror=alert(2)>", max_tokens="5")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-finished", "true")
    expect(answer.locator("[data-answer]")).to_contain_text("<script>alert(1)</script>")
    expect(answer.locator("[data-answer]")).to_contain_text("<img src=x onerror=alert(2)>")
    expect(answer.locator("[data-answer] strong")).to_have_text("bold")  # Markdown still renders
    assert page.locator(".messages script, .messages img").count() == 0
    assert dialogs == []
    screenshot(page, "chat-finished")

    conversation = Conversation.objects.get(owner__username="ada")
    jobs = list(Job.objects.filter(owner__username="ada").order_by("created_at"))
    assert [job.status for job in jobs] == ["succeeded", "canceled", "succeeded"]
    assert {job.client for job in jobs} == {"web"}

    # History: the jobs with their timings, and the conversation behind them.
    page.goto("/history/")
    expect(page.locator("tbody tr")).to_have_count(3)
    screenshot(page, "history")
    page.goto(f"/history/{jobs[0].id}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Echo")
    for timing in ("queue", "ttft", "duration"):
        expect(page.locator(f"[data-timing={timing}]")).to_have_text(re.compile(r"\d+(\.\d+)? (ms|s|min)"))
    expect(page.get_by_role("link", name=conversation.title)).to_be_visible()
    screenshot(page, "job-detail")

    # Someone else sees neither the conversation nor the job.
    other = new_page()
    sign_up(other, "grace")
    assert other.goto(f"/chat/{conversation.id}/").status == 404
    assert other.goto(f"/history/{jobs[0].id}/").status == 404

    # A new API key is shown once, with a copy button.
    page.goto("/keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("[data-secret]")
    expect(secret).to_have_value(re.compile(r"^djn_[0-9a-f]+_\S+$"))
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    screenshot(page, "keys-created")
    page.goto("/keys/")
    expect(page.locator("[data-secret]")).to_have_count(0)
    expect(page.get_by_role("cell", name="laptop")).to_be_visible()

    page.goto("/usage/")
    screenshot(page, "usage")


LINES_OF_TEXT = """node => {
    const range = document.createRange();
    range.selectNodeContents(node);
    return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
}"""


def test_pages_fit_a_phone(new_page, screenshot, slow_echo, celery_worker):
    slow_echo.display_name = "Echo 135M Instruct, slow"  # as long as the names real models have
    slow_echo.save(update_fields=["display_name"])
    page = new_page(width=375, height=812)
    sign_up(page, "phone")
    send(page, "hello streaming world, a message long enough to make a title wider than the phone", max_tokens="12")
    expect(last_answer(page)).to_have_attribute("data-finished", "true")
    # The answer's header wraps between its parts, never inside the status badge or the details link.
    for part in ("[data-status-badge]", "a:text('details')"):
        lines = last_answer(page).locator(f".msg-meta {part}").evaluate(LINES_OF_TEXT)
        assert lines == 1, f"{part} is on {lines} lines"
    # The composer scrolls with the page: stuck to the bottom, its four rows would hide half the answer.
    assert page.locator("#composer").evaluate("form => getComputedStyle(form).position") == "static"
    # The conversation's title is cut with an ellipsis inside the sidebar, not clipped by its edge.
    title, sidebar = page.locator(".conversation-list a").first, page.locator(".chat-sidebar")
    title_box, sidebar_box = title.bounding_box(), sidebar.bounding_box()
    assert title_box["x"] + title_box["width"] <= sidebar_box["x"] + sidebar_box["width"]
    assert title.evaluate("link => link.scrollWidth > link.clientWidth")  # long enough to be cut
    for path, name in (
        (None, "phone-chat"),
        ("/history/", "phone-history"),
        ("/keys/", "phone-keys"),
        ("/usage/", "phone-usage"),
    ):
        if path:
            page.goto(path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 375, f"{name} is {scroll_width}px wide"
        screenshot(page, name)


def test_login_errors_and_the_skip_link(new_page, screenshot, db):
    page = new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    screenshot(page, "home")
    page.goto("/login/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    screenshot(page, "login-error")


def test_a_lost_connection_resumes_after_the_last_event_seen(new_page, slow_echo, celery_worker):
    page = new_page()
    urls: list[str] = []

    def cut_the_first_connection(ws):
        urls.append(ws.url)
        server = ws.connect_to_server()
        if len(urls) > 1:
            return  # later connections pass through untouched
        forwarded = {"n": 0}

        def forward(message):
            ws.send(message)
            forwarded["n"] += 1
            if forwarded["n"] == 4:  # the network drops mid-answer
                ws.close(code=4000, reason="network lost")
                server.close()

        server.on_message(forward)

    page.route_web_socket(re.compile(r"/ws/jobs/[0-9a-f-]{36}/"), cut_the_first_connection)
    sign_up(page, "lin")
    send(page, "hello streaming world")
    expect(last_answer(page)).to_have_attribute("data-finished", "true", timeout=20_000)
    assert answer_text(page) == FULL_ANSWER
    assert len(urls) >= 2
    assert urls[0].endswith("after=0")
    assert re.search(r"after=([1-9]\d*)$", urls[1]), urls


def test_a_tab_logged_out_elsewhere_stops_following_and_offers_to_log_in_again(new_page, slow_echo, celery_worker):
    page = new_page()
    sockets: list = []

    def hold(ws):
        sockets.append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r"/ws/jobs/[0-9a-f-]{36}/"), hold)
    sign_up(page, "leo")
    send(page, "hello streaming world")
    answer = last_answer(page)
    expect(answer.locator("[data-answer]")).not_to_be_empty()

    page.context.clear_cookies()  # logged out in another tab
    browser_side, server_side = sockets[0]
    browser_side.close(code=4000, reason="network lost")  # then the connection drops: the reconnect has no session
    server_side.close()

    expect(answer.locator("[data-error]")).to_contain_text("You are logged out")
    login = answer.get_by_role("link", name="Log in again")
    expect(login).to_have_attribute("href", re.compile(r"^/login/\?next=%2Fchat%2F[0-9a-f-]{36}%2F$"))
    expect(answer.locator("[data-generating]")).to_be_hidden()
    expect(answer.get_by_role("button", name="Stop")).to_be_hidden()
    assert len(sockets) == 2  # it tried once more, and stopped when refused


def test_copy_and_regenerate(new_page, slow_echo, celery_worker):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_up(page, "max")
    send(page, "copy these words", max_tokens="6")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-finished", "true")
    answer.get_by_role("button", name="Copy").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "copy these words copy these words"

    first_job = answer.get_attribute("data-job")
    answer.get_by_role("button", name="Regenerate").click()
    expect(page.locator(".msg-assistant")).to_have_count(1)
    expect(last_answer(page)).not_to_have_attribute("data-job", first_job)
    expect(last_answer(page)).to_have_attribute("data-finished", "true")
    assert answer_text(page) == "copy these words copy these words"
    assert Job.objects.filter(owner__username="max").count() == 2
