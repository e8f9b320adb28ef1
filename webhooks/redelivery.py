"""Redelivering a webhook on an operator's request."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import delivery_enqueue


def webhook_redeliver(*, delivery: WebhookDelivery) -> bool:
    """Send a delivery once more, with the same webhook-id; False when it is already pending.

    A failed delivery gets one more attempt; a succeeded one is sent again
    (receivers deduplicate on the id, so this is safe).
    """
    with transaction.atomic():
        reopened = (
            WebhookDelivery.objects.filter(id=delivery.id)
            .exclude(status=DeliveryStatus.PENDING)
            .update(status=DeliveryStatus.PENDING, next_attempt_at=None, due_at=timezone.now(), delivered_at=None)
        )
        if reopened:
            attempt = WebhookDelivery.objects.filter(id=delivery.id).values_list(F("attempts") + 1, flat=True).get()
            transaction.on_commit(lambda: delivery_enqueue(delivery_id=delivery.id, attempt=attempt), robust=True)
    delivery.refresh_from_db()
    return bool(reopened)
