"""Webhooks: what a job asked to be told about, and every delivery made for it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class WebhookEvent(models.TextChoices):
    START = "start", "The job started running"
    OUTPUT = "output", "The job's output was stored"
    COMPLETED = "completed", "The job finished (succeeded, failed, canceled or expired)"


# Each event as the receiver reads it, in the payload's `type`.
EVENT_TYPES = {
    WebhookEvent.START: "job.started",
    WebhookEvent.OUTPUT: "job.output",
    WebhookEvent.COMPLETED: "job.completed",
}


class SigningSecret(models.Model):
    """A user's Standard Webhooks secret (`whsec_...`): every delivery to that user is signed with it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="webhook_signing_secret"
    )
    secret = models.CharField(max_length=100, editable=False)
    rotated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhook secret of {self.user_id}"


class JobWebhook(models.Model):
    """The URL a job's owner asked to be called at, and for which events."""

    job = models.OneToOneField("inference.Job", on_delete=models.CASCADE, primary_key=True, related_name="webhook")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.job_id} -> {self.url}"

    @property
    def events_in_order(self) -> list[str]:
        """Its events in the order a job meets them: start, output, completed."""
        return sorted(self.events, key=list(WebhookEvent.values).index)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one URL: sent, retried with backoff, and logged attempt by attempt.

    Its id is the `webhook-id` header, the same on every retry, so receivers can deduplicate.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_deliveries")
    job = models.ForeignKey("inference.Job", on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=20, choices=WebhookEvent.choices)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # a retry's scheduled time, shown to users
    # While pending: when its current attempt's message is due (sent now, or a retry's countdown).
    # A delivery long past it lost that message; the resend sweep sends it again.
    due_at = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="delivery_owner_recent"),
            # The resend sweep's search for overdue deliveries: only the few pending ones.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="pending"),
                name="delivery_pending_due",
            ),
        ]
        constraints = [
            # A job's lifecycle hook may run twice (a retried start): each event is delivered once.
            models.UniqueConstraint(fields=["job", "event"], name="delivery_once_per_job_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event} of {self.job_id} ({self.status})"

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"

    @property
    def event_type(self) -> str:
        return EVENT_TYPES[self.event]

    @property
    def last_answer(self) -> str:
        """What its receiver last answered: the HTTP status, the error, or both ("" before any attempt)."""
        status = f"HTTP {self.last_status_code}" if self.last_status_code else ""
        return " ".join(part for part in (status, self.last_error) if part)


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: when, how long, and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
