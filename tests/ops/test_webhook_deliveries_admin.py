"""The operators' list of webhook deliveries: one line each, found by the ids as the list shows them."""

import pytest

from inference.services.jobs import job_submit
from webhooks.models import DeliveryStatus, JobWebhook, WebhookDelivery

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/webhooks/webhookdelivery/"


def _delivery(owner, model, text, **fields) -> WebhookDelivery:
    job = job_submit(user=owner, model=model, input={"messages": [{"role": "user", "content": text}]})
    return WebhookDelivery.objects.create(owner=owner, job=job, url="https://example.com/hook", payload={}, **fields)


def test_each_delivery_is_one_line_naming_its_job_event_and_last_answer(operator_client, owner, echo_model):
    failing = _delivery(
        owner,
        echo_model,
        "one",
        event="completed",
        status=DeliveryStatus.PENDING,
        attempts=2,
        last_status_code=500,
        last_error="the receiver answered 500",
    )
    unsent = _delivery(owner, echo_model, "two", event="start")

    page = operator_client.get(CHANGELIST).content.decode()

    short = f'<code title="{failing.id}">{str(failing.id)[:8]}</code>'
    assert f'<a href="/admin/webhooks/webhookdelivery/{failing.id}/change/">{short}</a>' in page
    job_short = f'<code title="{failing.job_id}">{str(failing.job_id)[:8]}</code>'
    assert f'<a href="/admin/inference/job/{failing.job_id}/change/">{job_short}</a>' in page
    assert '<td class="field-event_type">job.completed</td>' in page  # as the receiver reads it
    assert '<td class="field-last_answer">HTTP 500 the receiver answered 500</td>' in page
    assert '<td class="field-event_type">job.started</td>' in page
    assert '<td class="field-last_answer">—</td>' in page  # `unsent` has had no attempt
    assert str(unsent.id)[:8] in page


@pytest.mark.parametrize("by", ["delivery", "job"])
def test_search_finds_a_delivery_by_the_start_of_its_or_its_jobs_id(operator_client, owner, echo_model, by):
    wanted = _delivery(owner, echo_model, "wanted", event="completed")
    other = _delivery(owner, echo_model, "other", event="completed")
    prefix = str(wanted.id if by == "delivery" else wanted.job_id)[:8]

    page = operator_client.get(CHANGELIST, {"q": prefix}).content.decode()

    assert str(wanted.id) in page
    assert str(other.id) not in page


def test_a_jobs_webhook_is_listed_with_its_job_and_edited_with_https_assumed(operator_client, owner, echo_model):
    hook = JobWebhook.objects.create(
        job=job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]}),
        url="https://example.com/hook",
        events=["completed"],
    )
    page = operator_client.get("/admin/webhooks/jobwebhook/").content.decode()
    job_short = f'<code title="{hook.job_id}">{str(hook.job_id)[:8]}</code>'
    assert f'<a href="/admin/inference/job/{hook.job_id}/change/">{job_short}</a>' in page

    change = f"/admin/webhooks/jobwebhook/{hook.pk}/change/"
    response = operator_client.post(change, {"job": hook.job_id, "url": "hooks.example.com/in", "events": '["start"]'})
    assert response.status_code == 302, response.content.decode()
    hook.refresh_from_db()
    assert (hook.url, hook.events) == ("https://hooks.example.com/in", ["start"])
