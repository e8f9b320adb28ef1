"""Admitting a job an API caller asked for: within the caller's plan, with its webhook.

The REST API and the OpenAI-compatible facade submit through `job_create`.
The request rate is counted in Redis (accounts/quotas.py); concurrency and
tokens per day are checked under a lock on the user's row, in the same
transaction that inserts the job, so parallel requests are admitted one at a
time and can never overshoot. A refused job rolls back and is never queued.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Plan, User
from accounts.quotas import Limits, default_limits, request_rate_acquire
from inference.errors import DjinnError
from inference.models import AIModel, Job, JobClient, JobStatus
from inference.services.jobs import job_build, job_store
from webhooks.services import WebhookRequest, job_webhook_attach, webhook_check

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
CONCURRENCY_RETRY_AFTER_SECONDS = 1


class QuotaExceeded(DjinnError):
    """A plan limit was reached; `retry_after` says when trying again can work."""

    status = 429
    code = "rate_limited"
    type = "rate_limit_error"

    def __init__(self, message: str, *, code: str, retry_after: float):
        super().__init__(message, code=code)
        self.retry_after = max(1, math.ceil(retry_after))


def day_start(moment: datetime | None = None) -> datetime:
    """Midnight UTC of the day of `moment`: token quotas count per UTC day."""
    moment = (moment or timezone.now()).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def tokens_counted_today(*, user: User) -> tuple[int, int]:
    """(tokens spent by today's finished jobs, tokens reserved by active jobs: prompt estimate + max_tokens)."""
    totals = Job.objects.filter(Q(created_at__gte=day_start()) | Q(status__in=ACTIVE_STATUSES), owner=user).aggregate(
        spent=Coalesce(Sum("prompt_tokens", filter=~Q(status__in=ACTIVE_STATUSES)), 0)
        + Coalesce(Sum("completion_tokens", filter=~Q(status__in=ACTIVE_STATUSES)), 0),
        reserved=Coalesce(Sum("reserved_tokens", filter=Q(status__in=ACTIVE_STATUSES)), 0),
    )
    return int(totals["spent"]), int(totals["reserved"])


def active_jobs_count(*, user: User) -> int:
    """The user's queued and running jobs."""
    return Job.objects.filter(owner=user, status__in=ACTIVE_STATUSES).aggregate(n=Count("id"))["n"]


def _check_rate(user: User, limits: Limits) -> None:
    if limits.requests_per_minute is None:
        return
    wait = request_rate_acquire(user_id=user.pk, limit=limits.requests_per_minute)
    if wait is not None:
        raise QuotaExceeded(
            f"Your plan allows {limits.requests_per_minute} job requests per minute.",
            code="rate_limited",
            retry_after=wait,
        )


def _check_concurrency(limits: Limits, active_jobs: int) -> None:
    if limits.concurrent_jobs is None:
        return
    if active_jobs >= limits.concurrent_jobs:
        raise QuotaExceeded(
            f"Your plan allows {limits.concurrent_jobs} jobs queued or running at once.",
            code="concurrency_limit",
            retry_after=CONCURRENCY_RETRY_AFTER_SECONDS,
        )


def _check_tokens(user: User, limits: Limits, job: Job) -> None:
    if limits.tokens_per_day is None:
        return
    spent, reserved = tokens_counted_today(user=user)  # `reserved` includes the job just inserted
    if spent + reserved > limits.tokens_per_day:
        tomorrow = day_start() + timedelta(days=1)
        raise QuotaExceeded(
            f"Your plan allows {limits.tokens_per_day} tokens per day; {spent} are spent and "
            f"{reserved} are reserved by your queued and running jobs, this one included "
            "(their prompts and max_tokens).",
            code="token_quota_exceeded",
            retry_after=(tomorrow - timezone.now()).total_seconds(),
        )


def _lock_user(user: User) -> tuple[Limits, int]:
    """Lock the user's row (admissions of one user queue here, one at a time), read their plan,
    then count their active jobs (few: this check keeps them under the limit).

    The count is its own statement on purpose: a subquery in the locking SELECT would read the
    snapshot taken before the lock was granted, and miss the job the previous holder just added
    (the race tests catch exactly that). Raw SQL because this runs on every job request and the
    ORM's compilation cost more than the queries (about 1 ms against 0.3 ms).
    """
    lock = " FOR UPDATE OF u" if connection.features.has_select_for_update_of else ""
    with connection.cursor() as plan_cursor, connection.cursor() as count_cursor:
        # Both are sent before either is read: in pipeline mode (see `_pipelined`) one round trip.
        plan_cursor.execute(
            f"SELECT p.name, p.concurrent_jobs, p.requests_per_minute, p.tokens_per_day"
            f" FROM {User._meta.db_table} u LEFT JOIN {Plan._meta.db_table} p ON p.id = u.plan_id"
            f" WHERE u.id = %s{lock}",
            [user.pk],
        )
        count_cursor.execute(
            f"SELECT COUNT(*) FROM {Job._meta.db_table} WHERE owner_id = %s AND status IN (%s, %s)",
            [user.pk, *ACTIVE_STATUSES],
        )
        name, concurrent, per_minute, per_day = plan_cursor.fetchone()
        (active,) = count_cursor.fetchone()
    if name is None:
        return default_limits(), active
    return Limits(plan=name, concurrent_jobs=concurrent, requests_per_minute=per_minute, tokens_per_day=per_day), active


def job_create(
    *,
    user: User,
    model: AIModel | str,
    input: Any,
    client: str = JobClient.REST,
    idempotency_key: str | None = None,
    webhook: WebhookRequest | None = None,
) -> Job:
    """Submit a job for an API caller, or raise QuotaExceeded, InvalidInput, Conflict...

    A request repeating an earlier Idempotency-Key returns that job (409 if
    the request differs) without counting against concurrency or tokens.
    """
    if webhook is not None:
        webhook_check(webhook=webhook)
    # Validated before the lock below: admissions of one user wait for each other there.
    job = job_build(user=user, model=model, input=input, client=client, idempotency_key=idempotency_key)
    # With an Idempotency-Key the insert's unique violation must surface at the INSERT, not at COMMIT.
    with _pipelined(idempotency_key is None), transaction.atomic():
        limits, active_jobs = _lock_user(user)
        _check_rate(user, limits)
        replay = bool(idempotency_key) and Job.objects.filter(owner=user, idempotency_key=idempotency_key).exists()
        if not replay:
            _check_concurrency(limits, active_jobs)
        job = job_store(job)
        if not replay:
            _check_tokens(user, limits, job)
        job_webhook_attach(job=job, webhook=webhook, created=not replay)
    return job


@contextmanager
def _pipelined(enabled: bool) -> Iterator[None]:
    """psycopg's pipeline mode: statements whose results nobody reads yet travel together, so the
    user's lock and the count of their jobs take one round trip, and the job's INSERT and the
    COMMIT another. The lock is held for two round trips instead of four (admissions of one
    user run one at a time, so this is their throughput). Errors surface at the next read."""
    if not enabled or connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield
