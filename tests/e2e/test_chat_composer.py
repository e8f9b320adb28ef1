"""The chat page around a conversation, in a real browser: a message too long for the model,
an answer longer than the window, an answer with no text, and one its max_tokens cut short."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from inference.models import AIModel
from tests.e2e.test_end_user_flow import answer_text, last_answer, send, sign_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _model(slug: str, **fields) -> AIModel:
    return AIModel.objects.create(
        slug=slug, display_name=slug.title(), task="chat", backend="echo", max_input_chars=2000, **fields
    )


def _answer_in_sight(page) -> bool:
    """Whether the end of the newest answer shows on screen, above the composer."""
    return page.evaluate(
        """() => {
            const answer = [...document.querySelectorAll('.msg-assistant')].at(-1).getBoundingClientRect();
            const composer = document.getElementById('composer').getBoundingClientRect();
            return answer.bottom > 0 && answer.bottom <= composer.top + 1;
        }"""
    )


def test_a_message_over_the_models_limit_is_counted_not_cut(new_page, db):
    _model("echo")
    page = new_page()
    sign_up(page, "pasty")
    message, counter = page.get_by_label("Message", exact=True), page.locator("[data-char-count]")
    send_button = page.get_by_role("button", name="Send")

    message.fill("x" * 2500)  # pasted: a maxlength would have kept 2,000 of it and said nothing
    assert len(message.input_value()) == 2500
    expect(counter).to_have_text("2,500 characters: Echo reads at most 2,000.")
    expect(send_button).to_be_disabled()

    message.fill("y" * 1700)
    expect(counter).to_have_text("1,700 of 2,000 characters")
    expect(send_button).to_be_enabled()

    message.fill("short")
    expect(counter).to_be_hidden()


def test_line_breaks_count_once_as_the_counter_says(new_page, db):
    _model("echo")
    page = new_page()
    sign_up(page, "poet")
    lines = "abc\n" * 500  # 2,000 characters here; the browser sends each line break as two

    page.get_by_label("Message", exact=True).fill(lines)
    expect(page.locator("[data-char-count]")).to_have_text("1,999 of 2,000 characters")  # trimmed, as sent
    page.get_by_role("button", name="Send").click()

    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    assert page.locator(".msg-user").last.inner_text().count("abc") == 500


@pytest.mark.worker
def test_a_long_answer_stays_in_sight_as_it_streams_until_the_reader_scrolls_up(new_page, celery_worker):
    _model("echo", config={"tokens": 1200, "tokens_per_second": 150})
    page = new_page(height=700)
    sign_up(page, "reader")
    send(page, "a long answer to follow down the page")

    answer = last_answer(page)
    page.wait_for_function("document.documentElement.scrollHeight > innerHeight + 400")  # it outgrew the window
    assert _answer_in_sight(page)
    page.evaluate("window.scrollTo(0, 0)")  # the reader goes back up to read
    time.sleep(0.5)
    assert answer.get_attribute("data-finished") == "false", "the answer ended before the reader scrolled"
    assert page.evaluate("scrollY") == 0

    expect(answer).to_have_attribute("data-finished", "true", timeout=20_000)
    announced = answer.locator("[data-announce][role=status]").inner_text()  # heard once, whole, at the end
    assert announced == f"Answer finished: {answer_text(page)}"
    page.reload()  # back in the conversation: at its newest turn
    expect(last_answer(page)).to_have_attribute("data-finished", "true")
    assert _answer_in_sight(page)


@pytest.mark.worker
def test_an_answer_with_no_text_says_so(new_page, celery_worker):
    _model("echo", default_params={"stop": ["hello"]})  # the echo's first word ends it
    page = new_page()
    sign_up(page, "quiet")
    send(page, "hello world")

    answer = last_answer(page)
    expect(answer).to_have_attribute("data-finished", "true")
    expect(answer).to_have_attribute("data-status", "succeeded")
    assert answer_text(page) == ""
    note = answer.locator("[data-answer]").evaluate("body => getComputedStyle(body, '::before').content")
    assert note == '"The model returned no text."'


@pytest.mark.worker
def test_an_answer_its_max_tokens_cut_short_says_so_when_it_ends_and_after_a_reload(new_page, celery_worker):
    _model("echo", max_output_tokens=50, config={"tokens_per_second": 5})
    page = new_page()
    sign_up(page, "terse")
    send(page, "one two three four five six seven eight", max_tokens="4")

    answer = last_answer(page)
    note = answer.locator("[data-length-note]")
    assert answer.get_attribute("data-finished") == "false", "the answer ended before the page followed it"
    expect(note).to_be_hidden()
    expect(answer).to_have_attribute("data-finished", "true", timeout=20_000)
    expect(note).to_be_visible()  # told by the stream's `done`
    assert (
        note.inner_text()
        == "Cut short at 4 tokens, its Max tokens (Echo allows up to 50). Ask it to go on for the rest."
    )
    assert answer_text(page) == "one two three four"

    page.reload()
    expect(last_answer(page).locator("[data-length-note]")).to_be_visible()  # told by the stored job

    send(page, "a whole answer")
    expect(last_answer(page)).to_have_attribute("data-finished", "true", timeout=20_000)
    assert answer_text(page) == "a whole answer"
    expect(last_answer(page).locator("[data-length-note]")).to_be_hidden()
