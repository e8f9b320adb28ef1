"""Celery tasks: thin wrappers that pass ids to services."""

from celery import shared_task

from webhooks.services import deliveries_resend_overdue, webhook_deliver


@shared_task(name="webhooks.tasks.deliver_webhook")
def deliver_webhook(delivery_id: str, attempt: int | None = None) -> str | None:
    return webhook_deliver(delivery_id=delivery_id, attempt=attempt)


@shared_task(name="webhooks.tasks.resend_overdue_deliveries")
def resend_overdue_deliveries() -> int:
    return deliveries_resend_overdue()
