"""Reads of webhook deliveries: a delivery of someone else's is the same 404 as a missing one."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.models import User
from inference.errors import NotFound
from inference.models import Job
from webhooks.models import JobWebhook, WebhookDelivery


def deliveries_for_user(*, user: User) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(owner=user)


def job_webhook_with_deliveries(*, job: Job) -> tuple[JobWebhook | None, list[WebhookDelivery]]:
    """The webhook a job asked for, if any, and its deliveries so far, oldest first.

    `job` must already be one its reader may see (job_get_for_user): the deliveries are the job's.
    """
    hook = JobWebhook.objects.filter(job=job).first()
    if hook is None:
        return None, []
    return hook, list(WebhookDelivery.objects.filter(job=job).order_by("created_at", "id"))


def delivery_get_for_user(*, user: User, delivery_id: str) -> WebhookDelivery:
    """The user's delivery, or NotFound whether it is missing or someone else's."""
    raw = str(delivery_id).removeprefix("msg_")
    try:
        key = uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such webhook delivery.", code="webhook_delivery_not_found") from None
    delivery = deliveries_for_user(user=user).prefetch_related("attempt_log").filter(id=key).first()
    if delivery is None:
        raise NotFound("No such webhook delivery.", code="webhook_delivery_not_found")
    return delivery
