"""Webhooks: signed (Standard Webhooks), retried with backoff, logged, and never sent inward (SSRF)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook, WebhookVerificationError

from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from tests.inference.api.helpers import CHAT, api, assert_error
from tests.inference.api.receiver import Receiver, SlowReceiver
from tests.support.processes import DaphneProcess, WorkerProcess, wait_for
from webhooks.models import DeliveryStatus, JobWebhook, WebhookAttempt, WebhookDelivery
from webhooks.redelivery import webhook_redeliver
from webhooks.services import (
    EXCERPT_CHARS,
    deliveries_resend_overdue,
    signing_secret_get,
    webhook_deliver,
    webhooks_on_job_event,
)
from webhooks.signing import signing_secret_generate

INWARD_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://localhost:8000/hook",  # a name that resolves to loopback
]


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", INWARD_URLS)
def test_webhook_urls_that_point_inward_are_refused_at_submit(live_server_url, owner_key, echo_model, url):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "echo", "input": CHAT, "webhook": {"url": url}})

    assert_error(response, 422, "webhook_url_not_allowed", "webhook.url")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_address_that_turned_inward_after_submit_is_refused_at_delivery(owner, echo_model, receiver, settings):
    # As if DNS answered with a public address at submit and with 127.0.0.1 now (rebinding).
    settings.WEBHOOK_ALLOWED_HOSTS = []
    job = job_submit(user=owner, model="echo", input=CHAT)
    JobWebhook.objects.create(job=job, url=f"{receiver.url}/hook", events=["completed"])
    Job.objects.filter(id=job.id).update(status=JobStatus.CANCELED)
    webhooks_on_job_event(job.id, "completed")
    delivery = WebhookDelivery.objects.get(job=job)

    assert webhook_deliver(delivery_id=delivery.id) == DeliveryStatus.FAILED

    delivery.refresh_from_db()
    assert delivery.last_error.startswith("webhook_url_not_allowed")
    assert (delivery.attempts, delivery.next_attempt_at) == (1, None)
    assert receiver.received == []


@pytest.mark.django_db
def test_an_operator_can_allow_an_internal_receiver_by_address(owner, echo_model, receiver, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    job = job_submit(user=owner, model="echo", input=CHAT)
    JobWebhook.objects.create(job=job, url=f"{receiver.url}/hook?tenant=7", events=["completed"])
    Job.objects.filter(id=job.id).update(status=JobStatus.CANCELED)
    webhooks_on_job_event(job.id, "completed")

    assert webhook_deliver(delivery_id=WebhookDelivery.objects.get(job=job).id) == DeliveryStatus.SUCCEEDED
    assert receiver.received[0].path == "/hook?tenant=7"


def _deliver_to(owner, url: str) -> tuple[str | None, float]:
    job = job_submit(user=owner, model="echo", input=CHAT)
    JobWebhook.objects.create(job=job, url=url, events=["completed"])
    Job.objects.filter(id=job.id).update(status=JobStatus.CANCELED)
    webhooks_on_job_event(job.id, "completed")
    started = time.monotonic()
    outcome = webhook_deliver(delivery_id=WebhookDelivery.objects.get(job=job).id)
    return outcome, time.monotonic() - started


@pytest.mark.django_db
def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(owner, echo_model, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    slow = SlowReceiver(drip="headers").start()
    try:
        outcome, seconds = _deliver_to(owner, f"{slow.url}/hook")
    finally:
        slow.stop()

    assert seconds < 3, "one byte every 0.2 s must not hold the worker past its deadline"
    assert outcome == DeliveryStatus.PENDING  # retried later
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("timeout")


@pytest.mark.django_db
def test_an_endless_answer_is_read_only_for_its_excerpt(owner, echo_model, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    endless = SlowReceiver(drip="body").start()
    try:
        outcome, seconds = _deliver_to(owner, f"{endless.url}/hook")
    finally:
        endless.stop()

    assert seconds < 3
    assert outcome == DeliveryStatus.SUCCEEDED
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200
    assert attempt.response_excerpt.startswith("ok ok")
    assert len(attempt.response_excerpt) == EXCERPT_CHARS


@pytest.fixture
def hooks_platform(worker_env, receiver):
    """A daphne and a worker that allow the receiver on 127.0.0.1, on a queue of their own."""
    env = {
        **worker_env,
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_QUEUE": "hooks-e2e",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    }
    server = DaphneProcess(env).start()
    worker = WorkerProcess(env, queues="hooks-e2e").start()
    yield server
    worker.stop()
    server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_job_calls_its_webhook_signed_retried_and_logged(hooks_platform, owner, owner_key, receiver):
    AIModel.objects.create(slug="hooked", display_name="Hooked", task="chat", backend="echo", queue="hooks-e2e")
    receiver.statuses = [200, 200, 503]  # start, output, then completed fails once
    webhook = {"url": f"{receiver.url}/hook", "events": ["start", "output", "completed"]}

    with api(hooks_platform.url, owner_key) as client:
        created = client.post("/api/v1/jobs", json={"model": "hooked", "input": CHAT, "webhook": webhook})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        wait_for(lambda: len(receiver.received) >= 4, timeout=30, what="four webhook requests")
        deliveries = client.get("/api/v1/webhooks/deliveries", params={"job": job_id}).json()["data"]
        secret = client.get("/api/v1/webhooks/secret").json()["secret"]

    verifier = Webhook(secret)
    payloads = [verifier.verify(request.body, request.headers) for request in receiver.received]
    assert [payload["type"] for payload in payloads] == ["job.started", "job.output", "job.completed", "job.completed"]
    assert payloads[-1]["data"]["status"] == "succeeded"
    assert payloads[-1]["data"]["output"]["text"] == "hello there general kenobi"
    retried = receiver.received[2:]
    assert retried[0].headers["webhook-id"] == retried[1].headers["webhook-id"]  # receivers can deduplicate
    assert secret == signing_secret_get(user=owner).secret
    with pytest.raises(WebhookVerificationError):  # another secret does not verify
        Webhook(signing_secret_generate()).verify(receiver.received[0].body, receiver.received[0].headers)

    by_event = {delivery["event"]: delivery for delivery in deliveries}
    assert by_event["completed"]["attempts"] == 2
    assert by_event["completed"]["status"] == "succeeded"
    assert all(delivery["status"] == "succeeded" for delivery in deliveries)
    with api(hooks_platform.url, owner_key) as client:
        detail = client.get(f"/api/v1/webhooks/deliveries/{by_event['completed']['id']}").json()
    assert [attempt["status_code"] for attempt in detail["attempt_log"]] == [503, 200]
    gap = _seconds_between(detail["attempt_log"][0]["started_at"], detail["attempt_log"][1]["started_at"])
    assert gap >= 0.5, "the retry should wait for its backoff"


def _lost_delivery(owner, url: str, *, due_seconds_ago: float) -> WebhookDelivery:
    """What a lost task message leaves behind: a pending delivery that no message will ever send."""
    job = job_submit(user=owner, model="echo", input=CHAT)
    return WebhookDelivery.objects.create(
        owner=owner,
        job=job,
        event="completed",
        url=url,
        payload={"type": "job.completed", "data": {"id": str(job.id)}},
        due_at=timezone.now() - timedelta(seconds=due_seconds_ago),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_delivery_whose_message_was_lost_is_sent_again_by_the_sweep(
    hooks_platform, owner, echo_model, receiver, settings
):
    settings.WEBHOOK_QUEUE = "hooks-e2e"
    grace = settings.WEBHOOK_RESEND_AFTER_SECONDS
    lost = _lost_delivery(owner, f"{receiver.url}/hook", due_seconds_ago=grace + 5)
    not_yet = _lost_delivery(owner, f"{receiver.url}/other", due_seconds_ago=grace - 5)

    assert deliveries_resend_overdue() == 1
    assert deliveries_resend_overdue() == 0, "a resent delivery is not overdue again until another grace period"

    wait_for(lambda: WebhookDelivery.objects.get(id=lost.id).status == DeliveryStatus.SUCCEEDED, timeout=20)
    assert [request.path for request in receiver.received] == ["/hook"]
    assert receiver.received[0].headers["webhook-id"] == lost.message_id
    assert WebhookDelivery.objects.get(id=not_yet.id).attempts == 0


@pytest.mark.django_db
def test_a_duplicated_or_late_message_never_makes_an_attempt_twice(owner, echo_model, receiver, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    receiver.statuses = [503]
    delivery = _lost_delivery(owner, f"{receiver.url}/hook", due_seconds_ago=0)

    assert webhook_deliver(delivery_id=delivery.id, attempt=1) == DeliveryStatus.PENDING  # 503: retried later
    assert webhook_deliver(delivery_id=delivery.id, attempt=1) is None  # the same message, delivered twice
    assert len(receiver.received) == 1
    assert webhook_deliver(delivery_id=delivery.id, attempt=2) == DeliveryStatus.SUCCEEDED
    assert webhook_deliver(delivery_id=delivery.id, attempt=2) is None
    assert webhook_deliver(delivery_id=delivery.id, attempt=3) is None  # settled
    assert len(receiver.received) == 2

    assert webhook_redeliver(delivery=delivery)
    assert (delivery.next_attempt_at, delivery.due_at is not None) == (None, True)  # "sending", not a retry time
    assert webhook_deliver(delivery_id=delivery.id, attempt=2) is None, "a message from before the redelivery"
    assert webhook_deliver(delivery_id=delivery.id, attempt=3) == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 3
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code")) == [
        (1, 503),
        (2, 200),
        (3, 200),
    ]


@pytest.mark.django_db
def test_a_delivery_whose_last_attempt_was_lost_fails_instead_of_going_past_the_limit(owner, echo_model, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    lost = _lost_delivery(owner, "https://example.com/hook", due_seconds_ago=settings.WEBHOOK_RESEND_AFTER_SECONDS + 5)
    WebhookDelivery.objects.filter(id=lost.id).update(attempts=3)  # claimed, then its worker died

    assert deliveries_resend_overdue() == 0

    lost.refresh_from_db()
    assert (lost.status, lost.attempts) == (DeliveryStatus.FAILED, 3)
    assert lost.last_error == "the worker making attempt 3 was lost"


def _seconds_between(first: str, second: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


@pytest.mark.django_db
def test_another_users_deliveries_are_404s_and_never_listed(owner, outsider, outsider_key, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    delivery = WebhookDelivery.objects.create(
        owner=owner, job=job, event="completed", url="https://x.test/", payload={}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {outsider_key}")

    assert client.get("/api/v1/webhooks/deliveries").json()["data"] == []
    for path in (
        f"/api/v1/webhooks/deliveries/{delivery.message_id}",
        f"/api/v1/webhooks/deliveries/{delivery.id}",
        "/api/v1/webhooks/deliveries/msg_nonsense",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "webhook_delivery_not_found"
    by_job = client.get("/api/v1/webhooks/deliveries", data={"job": str(job.id)})
    assert by_job.status_code == 404
    assert by_job.json()["error"]["code"] == "job_not_found"


@pytest.mark.django_db
def test_rotating_the_secret_changes_it(owner_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    before = client.get("/api/v1/webhooks/secret").json()["secret"]
    after = client.post("/api/v1/webhooks/secret/rotate").json()["secret"]
    assert before.startswith("whsec_")
    assert after.startswith("whsec_")
    assert before != after
    assert client.get("/api/v1/webhooks/secret").json()["secret"] == after
