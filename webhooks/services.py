"""Webhook services: subscribe a job, turn its transitions into deliveries, deliver them.

`webhooks_on_job_event` is the one hook the job lifecycle calls (at start and
at every end); it never raises into it. Deliveries go out from a Celery task,
signed per Standard Webhooks, retried with exponential backoff, and every
attempt is logged. Each task message names the attempt it is for, so a
duplicated or late message never sends twice; a delivery whose message was
lost (the broker unreachable when it was sent, a worker gone with it) is sent
again once it is WEBHOOK_RESEND_AFTER_SECONDS overdue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from inference.errors import Conflict
from inference.models import Job
from webhooks.addresses import WebhookUrlRefused, webhook_target
from webhooks.models import (
    EVENT_TYPES,
    DeliveryStatus,
    JobWebhook,
    SigningSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from webhooks.signing import signature, signing_secret_generate

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_webhook"
EXCERPT_CHARS = 1000
EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough for EXCERPT_CHARS characters of UTF-8
USER_AGENT = "Djinn-Webhooks/1"


@dataclass(frozen=True)
class WebhookRequest:
    """What a job submission asked for: a URL and the events to send to it."""

    url: str
    events: tuple[str, ...] = (WebhookEvent.COMPLETED,)


# ------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------


def signing_secret_get(*, user: User) -> SigningSecret:
    """The user's signing secret, made on first use."""
    secret = SigningSecret.objects.filter(user=user).first()
    if secret is not None:
        return secret
    try:
        with transaction.atomic():
            return SigningSecret.objects.create(user=user, secret=signing_secret_generate())
    except IntegrityError:  # made by a parallel request
        return SigningSecret.objects.get(user=user)


def signing_secret_rotate(*, user: User) -> SigningSecret:
    """Replace the user's secret; deliveries from now on are signed with the new one."""
    secret = signing_secret_get(user=user)
    secret.secret = signing_secret_generate()
    secret.save(update_fields=["secret", "rotated_at"])
    return secret


# ------------------------------------------------------------------------------
# Subscribing a job
# ------------------------------------------------------------------------------


def webhook_check(*, webhook: WebhookRequest) -> None:
    """Refuse a URL that points at this machine or a private network (unless allow-listed)."""
    webhook_target(webhook.url)


def job_webhook_attach(*, job: Job, webhook: WebhookRequest | None, created: bool) -> None:
    """Attach `webhook` to a job just made; for a replayed job, insist it asked for the same one."""
    events = sorted(set(webhook.events)) if webhook else []
    if created:
        if webhook is not None:
            JobWebhook.objects.create(job=job, url=webhook.url, events=events)
        return
    existing = JobWebhook.objects.filter(job=job).first()
    asked = (webhook.url, events) if webhook else None
    had = (existing.url, existing.events) if existing else None
    if asked != had:
        raise Conflict(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )


# ------------------------------------------------------------------------------
# From job transitions to deliveries
# ------------------------------------------------------------------------------


def webhooks_on_job_event(job_id: Any, event: str, *, has_webhook: bool | None = None) -> None:
    """Queue the deliveries a job's webhook asks for at `event` ("start" or "completed").

    Called by the job lifecycle; a failure here is logged, never raised. A caller that already
    knows whether the job has a webhook says so in `has_webhook`, sparing a query for the many
    jobs that have none.
    """
    if has_webhook is False:
        return
    try:
        _on_job_event(job_id, event)
    except Exception:
        logger.warning("could not queue the %s webhook of job %s", event, job_id, exc_info=True)


def _on_job_event(job_id: Any, event: str) -> None:
    hook = JobWebhook.objects.select_related("job__model").filter(job_id=job_id).first()
    if hook is None:
        return
    job = hook.job
    wanted = []
    if event == WebhookEvent.START and WebhookEvent.START in hook.events:
        wanted.append(WebhookEvent.START)
    if event == WebhookEvent.COMPLETED:
        has_output = bool(job.output_text) or job.output_json is not None
        if WebhookEvent.OUTPUT in hook.events and has_output:
            wanted.append(WebhookEvent.OUTPUT)
        if WebhookEvent.COMPLETED in hook.events:
            wanted.append(WebhookEvent.COMPLETED)
    for kind in wanted:
        _delivery_create(hook, job, kind)


def _payload(job: Job, kind: str) -> dict[str, Any]:
    from inference.api.serializers import job_representation  # the same job shape the API shows

    return {"type": EVENT_TYPES[kind], "timestamp": timezone.now().isoformat(), "data": job_representation(job)}


def _delivery_create(hook: JobWebhook, job: Job, kind: str) -> None:
    with transaction.atomic():
        delivery, created = WebhookDelivery.objects.get_or_create(
            job=job,
            event=kind,
            defaults={
                "owner_id": job.owner_id,
                "url": hook.url,
                "payload": _payload(job, kind),
                "due_at": timezone.now(),
            },
        )
        if created:
            # robust: should the broker be unreachable, the resend sweep sends it later.
            transaction.on_commit(lambda: delivery_enqueue(delivery_id=delivery.id, attempt=1), robust=True)


def delivery_enqueue(*, delivery_id: Any, attempt: int, countdown: float = 0) -> None:
    """Send the task message for attempt number `attempt` of a delivery."""
    from config.celery import app

    app.send_task(
        DELIVER_TASK, args=[str(delivery_id), attempt], queue=settings.WEBHOOK_QUEUE, countdown=countdown or None
    )


def deliveries_resend_overdue(*, limit: int = 500) -> int:
    """Send again the messages of pending deliveries long past their attempt's time; returns how many.

    A message can be lost: the broker was unreachable when it was sent, or the worker holding a
    retry's countdown died with it. The resent message names the same attempt, so if the first
    turns up after all, only one of them sends.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.WEBHOOK_RESEND_AFTER_SECONDS)
    overdue = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lt=cutoff)
    resent = 0
    for delivery_id, attempts, due in overdue.values_list("id", "attempts", "due_at")[:limit]:
        mine = WebhookDelivery.objects.filter(id=delivery_id, attempts=attempts, due_at=due)
        if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            # Its last attempt was claimed and never logged: the worker making it was lost.
            mine.update(
                status=DeliveryStatus.FAILED, due_at=None, last_error=f"the worker making attempt {attempts} was lost"
            )
            continue
        # Claim the resend, so a second sweep running beside this one does not send it too.
        if mine.update(due_at=now):
            logger.warning("webhook delivery %s: attempt %d was overdue, sending it again", delivery_id, attempts + 1)
            delivery_enqueue(delivery_id=delivery_id, attempt=attempts + 1)
            resent += 1
    return resent


# ------------------------------------------------------------------------------
# Delivering
# ------------------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): base, 4x base, 16x base..."""
    return settings.WEBHOOK_RETRY_BASE_SECONDS * 4 ** (attempt - 1)


def webhook_deliver(*, delivery_id: Any, attempt: int | None = None) -> str | None:
    """Make attempt number `attempt` of a pending delivery; schedules the one after when it fails.

    None when there is nothing to do: the delivery is settled, or that attempt was already made
    (a duplicated or resent message). A message without a number (sent before they carried one)
    makes the next attempt.
    """
    delivery = WebhookDelivery.objects.filter(id=delivery_id, status=DeliveryStatus.PENDING).first()
    if delivery is None:
        return None
    number = delivery.attempts + 1
    if attempt is not None and attempt != number:
        return None
    # Claim this attempt: a duplicated task message must not send it twice. Should this worker die
    # before the attempt is logged, the sweep finds it overdue from now and sends the next one.
    claimed = WebhookDelivery.objects.filter(id=delivery.id, attempts=delivery.attempts)
    if not claimed.update(attempts=number, next_attempt_at=None, due_at=timezone.now()):
        return None
    started = timezone.now()
    clock = time.monotonic()
    status_code, error, excerpt, retryable = _send(delivery)
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started,
        duration_ms=round((time.monotonic() - clock) * 1000),
        status_code=status_code,
        error=error[:500],
        response_excerpt=excerpt,
    )
    fields: dict[str, Any] = {
        "last_status_code": status_code,
        "last_error": error[:500],
        "next_attempt_at": None,
        "due_at": None,
    }
    if status_code is not None and 200 <= status_code < 300:
        fields.update(status=DeliveryStatus.SUCCEEDED, delivered_at=timezone.now())
    elif not retryable or number >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=DeliveryStatus.FAILED)
    else:
        delay = retry_delay(number)
        retry_at = timezone.now() + timedelta(seconds=delay)
        fields.update(next_attempt_at=retry_at, due_at=retry_at)
    WebhookDelivery.objects.filter(id=delivery.id).update(**fields)
    if fields["next_attempt_at"] is not None:
        delivery_enqueue(delivery_id=delivery.id, attempt=number + 1, countdown=delay)
    return fields.get("status", DeliveryStatus.PENDING)


def _send(delivery: WebhookDelivery) -> tuple[int | None, str, str, bool]:
    """POST the payload once: (status code, error, response excerpt, worth retrying)."""
    try:
        target = webhook_target(delivery.url)
    except WebhookUrlRefused as exc:
        return None, f"{exc.code}: {exc.message}", "", exc.code == "webhook_url_unresolvable"
    secret = signing_secret_get(user=delivery.owner).secret
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret=secret, message_id=delivery.message_id, timestamp=timestamp, body=body),
    }
    exchange = _Exchange()
    try:
        asyncio.run(exchange.run(target.connect_url, body, headers, sni_hostname=target.host))
    except TimeoutError:
        seconds = settings.WEBHOOK_TIMEOUT_SECONDS
        return None, f"timeout: the receiver did not answer within {seconds:g} s", "", True
    except httpx.HTTPError as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:500], "", True
    status_code = exchange.status_code
    excerpt = bytes(exchange.excerpt).decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    if 200 <= status_code < 300:
        return status_code, "", excerpt, False
    return status_code, f"the receiver answered {status_code}", excerpt, True


class _Exchange:
    """One POST within WEBHOOK_TIMEOUT_SECONDS in all, keeping at most EXCERPT_BYTES of the answer.

    httpx's timeouts bound each read, not the whole: a receiver that drips a byte at a time, or
    answers without end, would hold the worker. An asyncio deadline bounds it all; once the status
    has arrived, running out of time while reading the body only shortens the excerpt.
    """

    def __init__(self) -> None:
        self.status_code: int | None = None
        self.excerpt = bytearray()

    async def run(self, url: str, body: bytes, headers: dict[str, str], *, sni_hostname: str) -> None:
        try:
            async with asyncio.timeout(settings.WEBHOOK_TIMEOUT_SECONDS):
                await self._post(url, body, headers, sni_hostname)
        except TimeoutError:
            if self.status_code is None:
                raise

    async def _post(self, url: str, body: bytes, headers: dict[str, str], sni_hostname: str) -> None:
        # identity: the excerpt is raw bytes, never a decompressed bomb.
        headers = {**headers, "Accept-Encoding": "identity"}
        async with (
            httpx.AsyncClient(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream(
                "POST", url, content=body, headers=headers, extensions={"sni_hostname": sni_hostname}
            ) as response,
        ):
            self.status_code = response.status_code
            async for chunk in response.aiter_raw():
                self.excerpt += chunk[: EXCERPT_BYTES - len(self.excerpt)]
                if len(self.excerpt) >= EXCERPT_BYTES:
                    return
