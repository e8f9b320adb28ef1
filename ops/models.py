"""What operators did: one row per action, never edited."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One operator action: who did what to which object, when, with what details."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    actor_username = models.CharField(max_length=150, blank=True, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=50, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True, db_index=True)
    target_repr = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_username or 'system'} {self.action} {self.target_type}:{self.target_id}"


class JobTotalsSeal(models.Model):
    """/metrics' job totals up to a point in time, kept in one row (ops/job_totals.py).

    `created` counts the jobs created before `sealed_until` by model; `ended` sums the jobs that
    ended before it by model and status (count, tokens, latency buckets made with `latency_bounds`).
    One row, so a scrape reads the totals and their point in time at once.
    """

    sealed_until = models.DateTimeField(null=True, blank=True)
    latency_bounds = models.JSONField(default=list)
    created = models.JSONField(default=dict)
    ended = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"job totals sealed until {self.sealed_until}"
