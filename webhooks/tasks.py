"""Celery tasks: thin wrappers that pass ids to services."""

from celery import shared_task

from webhooks.services import webhook_deliver


@shared_task(name="webhooks.tasks.deliver_webhook")
def deliver_webhook(delivery_id: str) -> str | None:
    return webhook_deliver(delivery_id=delivery_id)
