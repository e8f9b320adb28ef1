"""What a user has used: tokens per day, jobs by status, and where they stand against their plan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from accounts.models import User
from accounts.quotas import limits_for_user, requests_in_window
from inference.models import Job, JobStatus
from inference.services.admission import active_jobs_count, day_start, tokens_counted_today


def usage_for_user(*, user: User, days: int = 7) -> dict[str, Any]:
    """Tokens and jobs per UTC day for the last `days` days (today included), and the plan's limits."""
    limits = limits_for_user(user=user)
    today = day_start()
    since = today - timedelta(days=days - 1)
    jobs = Job.objects.filter(owner=user, created_at__gte=since)
    per_day = {
        row["day"]: row
        for row in jobs.annotate(day=TruncDate("created_at", tzinfo=today.tzinfo))
        .values("day")
        .annotate(jobs=Count("id"), prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"))
    }
    daily = []
    for offset in range(days):
        day = (since + timedelta(days=offset)).date()
        row = per_day.get(day, {})
        prompt, completion = row.get("prompt_tokens") or 0, row.get("completion_tokens") or 0
        daily.append(
            {
                "date": day.isoformat(),
                "jobs": row.get("jobs", 0),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        )
    by_status = dict.fromkeys(JobStatus.values, 0)
    for row in jobs.values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    spent, reserved = tokens_counted_today(user=user)
    remaining = None if limits.tokens_per_day is None else max(0, limits.tokens_per_day - spent - reserved)
    return {
        "object": "usage",
        "period": {"start": since.date().isoformat(), "end": today.date().isoformat(), "days": days},
        "daily": daily,
        "jobs_by_status": by_status,
        "plan": {
            "name": limits.plan,
            "concurrent_jobs": limits.concurrent_jobs,
            "requests_per_minute": limits.requests_per_minute,
            "tokens_per_day": limits.tokens_per_day,
        },
        "current": {
            "active_jobs": active_jobs_count(user=user),
            "requests_last_minute": requests_in_window(user_id=user.pk),
            "tokens_today": spent,
            "tokens_reserved": reserved,
            "tokens_remaining_today": remaining,
        },
    }
