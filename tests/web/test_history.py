from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inference.models import Job
from webhooks.models import DeliveryStatus, JobWebhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def _job(owner, model, text, **fields):
    now = timezone.now()
    return Job.objects.create(
        owner=owner,
        model=model,
        task="chat",
        input={"messages": [{"role": "user", "content": text}]},
        input_text=text,  # as job_build sets it
        deadline_at=now + timedelta(hours=1),
        **fields,
    )


def test_history_lists_every_client_and_filters(owner_client, owner, outsider, echo_model):
    _job(owner, echo_model, "apples from the web", client="web", status="succeeded")
    _job(owner, echo_model, "bananas from the api", client="rest", status="failed")
    _job(owner, echo_model, "cherries from openai", client="openai", status="succeeded")
    _job(outsider, echo_model, "someone else's apples", client="web")
    page = owner_client.get(reverse("history")).text
    assert "apples from the web" in page
    assert "bananas from the api" in page
    assert "cherries from openai" in page
    assert "someone else" not in page
    assert "OpenAI facade" in page
    assert "REST API" in page
    assert "Web UI" in page

    page = owner_client.get(reverse("history"), {"q": "BANANAS"}).text
    assert "bananas" in page
    assert "apples" not in page
    assert "No jobs match" in owner_client.get(reverse("history"), {"q": "role"}).text  # a key of the input's JSON
    page = owner_client.get(reverse("history"), {"status": "succeeded"}).text
    assert "apples" in page
    assert "bananas" not in page
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "No jobs match" in owner_client.get(reverse("history"), {"since": tomorrow}).text


def test_a_range_that_ends_before_it_starts_is_refused_and_the_start_still_applies(owner_client, owner, echo_model):
    _job(owner, echo_model, "made today", status="succeeded")
    today = timezone.now().date()

    page = owner_client.get(
        reverse("history"), {"since": today.isoformat(), "until": (today - timedelta(days=3)).isoformat()}
    ).text

    assert 'id="id_until_error"' in page
    assert "This day comes before the From day." in page
    assert "made today" in page


def test_a_user_without_jobs_is_told_where_to_start_not_that_nothing_matches(owner_client, owner):
    page = owner_client.get(reverse("history"), {"utm_source": "newsletter"}).text  # not a filter

    assert "No jobs yet" in page
    assert "No jobs match" not in page
    assert 'href="/chat/"' in page


def test_an_invalid_filter_is_shown_and_left_out_while_the_others_apply(owner_client, owner, echo_model):
    _job(owner, echo_model, "apples that worked", status="succeeded")
    _job(owner, echo_model, "bananas that failed", status="failed")

    page = owner_client.get(reverse("history"), {"status": "failed", "since": "not-a-date"}).text

    assert "bananas that failed" in page
    assert "apples that worked" not in page
    assert 'id="id_since_error"' in page
    assert "Enter a valid date." in page
    assert "A filter could not be used" in page


def test_a_switched_off_model_stays_in_the_filter_for_those_who_used_it(owner_client, owner, outsider, echo_model):
    from inference.models import AIModel

    old = AIModel.objects.create(slug="old-chat", display_name="Old chat", task="chat", backend="echo", enabled=False)
    AIModel.objects.create(slug="unused", display_name="Never used", task="chat", backend="echo", enabled=False)
    _job(owner, old, "from the old days")
    _job(owner, echo_model, "from today")
    _job(outsider, old, "not mine")

    page = owner_client.get(reverse("history"), {"model": "old-chat"}).text

    assert '<option value="old-chat" selected>Old chat (switched off)</option>' in page
    assert "Never used" not in page
    assert "from the old days" in page
    assert "from today" not in page
    assert "not mine" not in page


def test_history_pages(owner_client, owner, echo_model):
    for i in range(25):
        _job(owner, echo_model, f"job number {i}")
    first = owner_client.get(reverse("history")).text
    assert "Page 1 of 2" in first
    assert "Older" in first
    assert "Page 2 of 2" in owner_client.get(reverse("history"), {"page": 2}).text


def test_the_detail_page_shows_timings_and_usage(owner_client, owner, echo_model):
    created = timezone.now()
    job = _job(owner, echo_model, "timed", status="succeeded", output_text="timed answer", prompt_tokens=3)
    Job.objects.filter(id=job.id).update(
        created_at=created,
        started_at=created + timedelta(milliseconds=250),
        first_token_at=created + timedelta(milliseconds=400),
        finished_at=created + timedelta(seconds=2, milliseconds=250),
        completion_tokens=7,
    )
    page = owner_client.get(reverse("job", args=[job.id])).text
    assert "250 ms" in page  # queue wait
    assert "400 ms" in page  # time to first token, from submission
    assert "2.00 s" in page  # duration
    assert "3 prompt + 7 completion = 10" in page
    assert "timed answer" in page


@pytest.mark.parametrize(("completion_tokens", "cut_short"), [(7, True), (6, False)])
def test_the_detail_page_says_when_max_tokens_cut_the_answer_short(
    owner_client, owner, echo_model, completion_tokens, cut_short
):
    job = _job(
        owner, echo_model, "cut", status="succeeded", output_text="a b c d e f g", completion_tokens=completion_tokens
    )
    Job.objects.filter(id=job.id).update(input={**job.input, "max_tokens": 7})

    page = owner_client.get(reverse("job", args=[job.id])).text

    assert ("Cut short: the answer reached its max_tokens (7)." in page) is cut_short


def test_another_users_job_is_a_404(outsider_client, owner, echo_model):
    job = _job(owner, echo_model, "private")
    assert outsider_client.get(reverse("job", args=[job.id])).status_code == 404
    assert outsider_client.get(reverse("job-json", args=[job.id])).status_code == 404


def _delivery(job, event, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        owner=job.owner, job=job, event=event, url="https://example.com/hooks/djinn", payload={}, **fields
    )


def test_the_detail_page_shows_the_jobs_webhook_and_each_delivery(owner_client, owner, echo_model):
    job = _job(owner, echo_model, "hooked", status="succeeded", output_text="done")
    JobWebhook.objects.create(job=job, url="https://example.com/hooks/djinn", events=["completed", "start"])
    now = timezone.now()
    _delivery(job, "start", status=DeliveryStatus.SUCCEEDED, attempts=1, last_status_code=204, delivered_at=now)
    _delivery(
        job,
        "completed",
        status=DeliveryStatus.PENDING,
        attempts=2,
        last_error="timed out after 10 s",
        next_attempt_at=now + timedelta(minutes=1),
    )
    page = owner_client.get(reverse("job", args=[job.id])).text
    assert 'Calls <code class="url">https://example.com/hooks/djinn</code> on start, completed.' in page
    started, completed = page.index("job.started"), page.index("job.completed")
    assert started < completed  # oldest first, as they were sent
    first, second = page[started:completed], page[completed:]
    assert "HTTP 204" in first
    assert "delivered" in first
    assert "timed out after 10 s" in second
    assert "next try" in second
    _delivery(job, "output", status=DeliveryStatus.PENDING, attempts=1, due_at=now)  # its attempt under way
    page = owner_client.get(reverse("job", args=[job.id])).text
    assert "sending" in page[page.index("job.output") :]
    assert f"/api/v1/webhooks/deliveries?job={job.id}" in page


def test_the_detail_page_of_a_job_without_a_webhook_says_nothing_of_webhooks(owner_client, owner, echo_model):
    job = _job(owner, echo_model, "plain", status="succeeded", output_text="done")
    assert "Webhook" not in owner_client.get(reverse("job", args=[job.id])).text
