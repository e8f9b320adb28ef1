"""The playgrounds and the live history page, in a real browser against a real worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from inference.models import AIModel, Job
from inference.services.jobs import job_submit
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def logged_in_page(new_page, daphne_server):
    User.objects.create_user(username="lin", email="lin@example.com", password="a-long-pass-9")
    page = new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("lin")
    page.get_by_label("Password").fill("a-long-pass-9")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    return page


def test_the_embeddings_playground_shows_dimensions_and_similarity(logged_in_page, screenshot, celery_worker):
    AIModel.objects.create(slug="echo-embed", display_name="Echo embeddings", task="embedding", backend="echo")
    page = logged_in_page
    page.goto("/playground/embeddings/")
    page.get_by_label("First text").fill("a cat sat on the mat")
    page.get_by_label("Second text").fill("a cat sat on the mat")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("[data-result]")).to_contain_text("8 dimensions per vector")
    expect(page.locator("[data-result]")).to_contain_text("Similarity 1.000")
    screenshot(page, "playground-embeddings")


def test_the_classification_playground_draws_a_bar_per_label(logged_in_page, screenshot, celery_worker):
    AIModel.objects.create(slug="echo-cls", display_name="Echo labels", task="classification", backend="echo")
    page = logged_in_page
    page.goto("/playground/classification/")
    page.get_by_label("Text").fill("the weather is sunny today")
    page.get_by_label("Labels").fill("sunny weather, sports, cooking")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator(".score")).to_have_count(3)
    expect(page.locator(".score").first).to_contain_text("sunny weather")
    screenshot(page, "playground-classification")


def test_the_classification_playground_explains_bad_labels(logged_in_page):
    AIModel.objects.create(slug="echo-cls", display_name="Echo labels", task="classification", backend="echo")
    page = logged_in_page
    page.goto("/playground/classification/")
    page.get_by_label("Text").fill("anything")
    page.get_by_label("Labels").fill("only-one")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator(".field-error")).to_have_text("Give at least two labels, separated by commas.")
    expect(page.get_by_role("alert")).to_have_text("Please correct the fields above.")  # they are above it
    expect(page.get_by_label("Labels")).to_be_focused()
    expect(page.get_by_label("Labels")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Text")).not_to_have_attribute("aria-invalid", "true")


def test_history_updates_a_running_job_without_a_reload(logged_in_page, celery_worker):
    AIModel.objects.create(
        slug="echo", display_name="Echo", task="chat", backend="echo", config={"tokens": 40, "tokens_per_second": 20}
    )
    page = logged_in_page
    page.goto("/chat/")  # the model picker lists the model registered after log-in
    page.get_by_label("Message", exact=True).fill("watch me from history")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    page.goto("/history/")
    badge = page.locator("tbody tr").first.locator("[data-status-badge]")
    expect(badge).to_have_text(re.compile("Queued|Running"))
    expect(badge).to_have_text("Succeeded", timeout=15_000)
    job = Job.objects.get()
    assert job.completion_tokens == 40
    expect(page.locator("tbody tr").first.locator("[data-tokens]")).to_have_text(str(job.total_tokens))


def test_a_running_jobs_page_shows_its_answer_as_it_is_written(logged_in_page, celery_worker):
    AIModel.objects.create(
        slug="echo", display_name="Echo", task="chat", backend="echo", config={"tokens": 60, "tokens_per_second": 20}
    )
    page = logged_in_page
    page.goto("/chat/")
    page.get_by_label("Message", exact=True).fill("read me from the job page")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    job_id = page.locator(".msg-assistant").last.get_attribute("data-job")

    page.goto(f"/history/{job_id}/")
    live = page.locator("[data-live-output]")
    expect(live).to_contain_text("read me from")  # while it runs: three seconds of answer
    assert "Not finished yet" not in page.locator("main").inner_text()
    expect(page.locator("[data-status-badge]")).to_have_text("Succeeded", timeout=15_000)
    expect(page.locator("pre.wrap").last).to_have_text(Job.objects.get(id=job_id).output_text)  # the stored answer


def test_a_jobs_page_opened_before_its_first_token_fills_in_its_timings_as_they_come(logged_in_page, celery_worker):
    AIModel.objects.create(
        slug="slow-start",
        display_name="Slow start",
        task="chat",
        backend="echo",
        config={"load_seconds": 2, "tokens": 60, "tokens_per_second": 20},  # 2 s to load, 3 s to answer
    )
    page = logged_in_page
    user = User.objects.get(username="lin")
    job = job_submit(user=user, model="slow-start", input={"messages": [{"role": "user", "content": "time me"}]})
    page.goto(f"/history/{job.id}/")
    ttft = page.locator('[data-timing="ttft"]')
    assert ttft.inner_text() == "—"  # rendered while the model loads

    expect(ttft).to_have_text(re.compile(r"^\d[\d.]* (ms|s)$"), timeout=10_000)
    expect(page.locator('[data-timing="queue"]')).to_have_text(re.compile(r"^\d[\d.]* (ms|s)$"))
    expect(page.locator('[data-timing="duration"]')).to_have_text("—")
    expect(page.locator("[data-live-output]")).to_have_count(1)  # still the page rendered while the job ran
    expect(page.locator("[data-status-badge]")).to_have_text("Succeeded", timeout=15_000)


def test_a_jobs_page_opened_as_the_job_ends_shows_how_it_ended(logged_in_page, celery_worker):
    # Rendered while the job waits for its model, the page shows the result once the job's log says it ended.
    AIModel.objects.create(slug="emb", display_name="Emb", task="embedding", backend="echo", config={"load_seconds": 1})
    page = logged_in_page
    job = job_submit(user=User.objects.get(username="lin"), model="emb", input={"input": "quick"})
    page.goto(f"/history/{job.id}/")

    expect(page.locator("[data-status-badge]")).to_have_text("Succeeded", timeout=15_000)
    expect(page.locator("pre.json")).to_contain_text("embeddings")


def test_a_running_embedding_jobs_page_counts_the_texts_done(logged_in_page, celery_worker):
    AIModel.objects.create(
        slug="emb",
        display_name="Emb",
        task="embedding",
        backend="echo",
        config={"batch_size": 2, "seconds_per_text": 0.2},  # a step of 2 texts every 0.4 s
    )
    page = logged_in_page
    texts = [f"text {i}" for i in range(12)]
    job = job_submit(user=User.objects.get(username="lin"), model="emb", input={"input": texts})
    page.goto(f"/history/{job.id}/")

    waiting = page.locator("[data-output-waiting]")
    expect(waiting).to_have_text(re.compile(r"^Not finished yet: ([2468]|10) of 12 texts done\."))
    expect(page.locator("[data-status-badge]")).to_have_text("Succeeded", timeout=15_000)
    expect(page.locator("pre.json")).to_contain_text("embeddings")


def test_history_shows_a_change_made_before_its_live_socket_was_up(logged_in_page, celery_worker):
    AIModel.objects.create(
        slug="echo", display_name="Echo", task="chat", backend="echo", config={"tokens": 10, "tokens_per_second": 10}
    )
    page = logged_in_page
    held: list = []
    page.route_web_socket(re.compile(r"/ws/jobs/(\?.*)?$"), lambda ws: held.append(ws))  # held until the test says
    job = job_submit(
        user=User.objects.get(username="lin"), model="echo", input={"messages": [{"role": "user", "content": "hi"}]}
    )
    page.goto("/history/")
    badge = page.locator(f'[data-job-row="{job.id}"] [data-status-badge]')
    expect(badge).to_have_text(re.compile("Queued|Running"))

    wait_for(lambda: Job.objects.get(id=job.id).is_finished, timeout=15, what="the job to end")
    held[0].connect_to_server()  # the socket is up only now

    expect(badge).to_have_text("Succeeded")


def test_a_playground_whose_session_ended_says_so_and_offers_to_log_in(logged_in_page):
    AIModel.objects.create(slug="echo-embed", display_name="Echo embeddings", task="embedding", backend="echo")
    page = logged_in_page
    page.goto("/playground/embeddings/")
    page.get_by_label("First text").fill("one")
    page.get_by_label("Second text").fill("two")
    page.context.clear_cookies()  # logged out in another tab, or the session expired

    page.get_by_role("button", name="Compare").click()

    result = page.locator("[data-result]")
    expect(result).to_contain_text("This page has expired: you may have been logged out.")
    expect(result.get_by_role("link", name="Log in again")).to_have_attribute(
        "href", "/login/?next=%2Fplayground%2Fembeddings%2F"
    )
    assert not Job.objects.exists()
