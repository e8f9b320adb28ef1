"""Redelivering a webhook on an operator's request."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from config.celery import app
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import DELIVER_TASK


def webhook_redeliver(*, delivery: WebhookDelivery) -> bool:
    """Send a delivery once more, with the same webhook-id; False when it is already pending.

    A failed delivery gets one more attempt; a succeeded one is sent again
    (receivers deduplicate on the id, so this is safe).
    """
    with transaction.atomic():
        reopened = (
            WebhookDelivery.objects.filter(id=delivery.id)
            .exclude(status=DeliveryStatus.PENDING)
            .update(status=DeliveryStatus.PENDING, next_attempt_at=None, delivered_at=None)
        )
        if reopened:
            transaction.on_commit(
                lambda: app.send_task(DELIVER_TASK, args=[str(delivery.id)], queue=settings.WEBHOOK_QUEUE)
            )
    delivery.refresh_from_db()
    return bool(reopened)
