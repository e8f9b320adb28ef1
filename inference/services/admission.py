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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.quotas import Limits, limits_for_user, request_rate_acquire
from inference.errors import DjinnError, InvalidJobInput
from inference.models import AIModel, Job, JobClient, JobStatus
from inference.services.jobs import job_build, job_store
from inference.validation import GENERATION_TASKS
from webhooks.services import WebhookRequest, job_webhook_attach, webhook_check

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
CONCURRENCY_RETRY_AFTER_SECONDS = 1
# A job refused only for what the user's running jobs reserve fits once one of them ends.
RESERVATIONS_RETRY_AFTER_SECONDS = 5


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


def _check_tokens(user: User, limits: Limits, job: Job, freed: _Freed) -> None:
    """Refuse the job if its reservation does not fit in the day, saying what would make it fit:
    a smaller job (it can never fit), the other jobs ending (soon), or tomorrow."""
    allowed = limits.tokens_per_day
    if allowed is None:
        return
    spent, reserved = tokens_counted_today(user=user)  # `reserved` includes the job just inserted
    reserved -= freed.tokens
    if spent + reserved <= allowed:
        return
    own = job.reserved_tokens
    generation = job.task in GENERATION_TASKS
    what = "its prompt and max_tokens" if generation else "its text"
    if own > allowed:
        raise InvalidJobInput(
            f"This job reserves {own} tokens ({what}), more than the {allowed} your plan allows in a day: "
            f"{'lower max_tokens' if generation else 'send less text'}.",
            code="exceeds_token_quota",
            param="max_tokens" if generation else None,
        )
    if spent + own <= allowed:
        raise QuotaExceeded(
            f"Your plan allows {allowed} tokens per day and this job reserves {own}; it fits beside the {spent} "
            f"spent today, but your other queued and running jobs reserve {reserved - own}. Try again when one ends.",
            code="token_quota_exceeded",
            retry_after=RESERVATIONS_RETRY_AFTER_SECONDS,
        )
    tomorrow = day_start() + timedelta(days=1)
    raise QuotaExceeded(
        f"Your plan allows {allowed} tokens per day; {spent} are spent today and this job reserves {own} "
        f"({what}): {max(0, allowed - spent)} are left until midnight UTC.",
        code="token_quota_exceeded",
        retry_after=(tomorrow - timezone.now()).total_seconds(),
    )


def _lock_user_and_count(user: User) -> int:
    """Lock the user's row (admissions of one user queue here, one at a time), then count their
    active jobs (few: this check keeps them under the limit).

    The count is its own statement on purpose: a subquery in the locking SELECT would read the
    snapshot taken before the lock was granted, and miss the job the previous holder just added
    (the race tests catch exactly that). Raw SQL because this runs on every job request and the
    ORM's compilation cost more than the queries (about 1 ms against 0.3 ms).
    """
    # NO KEY UPDATE, not UPDATE: the job's INSERT already holds the row's KEY SHARE lock (its
    # foreign key), as does every other admission waiting here; FOR UPDATE would deadlock them.
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    with connection.cursor() as lock_cursor, connection.cursor() as count_cursor:
        # Both are sent before either is read: in pipeline mode (see `_pipelined`) one round trip.
        lock_cursor.execute(f"SELECT 1 FROM {User._meta.db_table} WHERE id = %s{lock}", [user.pk])
        count_cursor.execute(
            f"SELECT COUNT(*) FROM {Job._meta.db_table} WHERE owner_id = %s AND status IN (%s, %s)",
            [user.pk, *ACTIVE_STATUSES],
        )
        lock_cursor.fetchone()
        (active,) = count_cursor.fetchone()
    return active


@dataclass(frozen=True)
class _Freed:
    """What the job a new one replaces holds (nothing once it has ended): the new job may use it."""

    jobs: int = 0
    tokens: int = 0

    @classmethod
    def by(cls, replacing: Job | None) -> _Freed:
        if replacing is None:
            return cls()
        reserved = (
            Job.objects.filter(id=replacing.id, status__in=ACTIVE_STATUSES)
            .values_list("reserved_tokens", flat=True)
            .first()
        )
        return cls() if reserved is None else cls(jobs=1, tokens=reserved)


def job_create(
    *,
    user: User,
    model: AIModel | str,
    input: Any,
    client: str = JobClient.REST,
    idempotency_key: str | None = None,
    webhook: WebhookRequest | None = None,
    replacing: Job | None = None,
) -> Job:
    """Submit a job for an API caller, or raise QuotaExceeded, InvalidInput, Conflict...

    A request repeating an earlier Idempotency-Key returns that job (409 if
    the request differs) without counting against concurrency or tokens.
    `replacing` is a job of the user's that this one takes the place of (a regenerated answer),
    which the caller cancels once this one is in: it does not count against this one's limits.
    """
    if webhook is not None:
        webhook_check(webhook=webhook)
    # Validated before the lock below: admissions of one user wait for each other there.
    job = job_build(user=user, model=model, input=input, client=client, idempotency_key=idempotency_key)
    limits = limits_for_user(user=user)
    _check_rate(user, limits)  # counted atomically in Redis: no need to hold the lock for it
    if idempotency_key is None:
        return _admit(job, user, limits, webhook, replacing)
    return _admit_idempotent(job, user, limits, webhook, replacing)


def _admit(job: Job, user: User, limits: Limits, webhook: WebhookRequest | None, replacing: Job | None) -> Job:
    """Insert first, then lock and count (the count includes the new job): the INSERT, the lock
    and the count travel in one round trip, the COMMIT in another, and between them Python only
    compares two numbers. Whoever holds the lock counts every job committed before it was
    granted, so parallel admissions cannot overshoot; an admission refused rolls its job back.
    """
    with _pipelined(), transaction.atomic():
        job_store(job)
        active_jobs = _lock_user_and_count(user) - 1
        freed = _Freed.by(replacing)  # read under the lock: it cannot end or start meanwhile unseen
        _check_concurrency(limits, active_jobs - freed.jobs)
        _check_tokens(user, limits, job, freed)
        job_webhook_attach(job=job, webhook=webhook, created=True)
    return job


def _admit_idempotent(
    job: Job, user: User, limits: Limits, webhook: WebhookRequest | None, replacing: Job | None
) -> Job:
    # Not pipelined: the INSERT's unique violation (a replay) must surface at the INSERT, not at COMMIT.
    with transaction.atomic():
        active_jobs = _lock_user_and_count(user)
        freed = _Freed.by(replacing)
        replay = Job.objects.filter(owner=user, idempotency_key=job.idempotency_key).exists()
        if not replay:
            _check_concurrency(limits, active_jobs - freed.jobs)
        job = job_store(job)
        if not replay:
            _check_tokens(user, limits, job, freed)
        job_webhook_attach(job=job, webhook=webhook, created=not replay)
    return job


@contextmanager
def _pipelined() -> Iterator[None]:
    """psycopg's pipeline mode: statements whose results nobody reads yet travel together (see
    `_admit`). Admissions of one user run one at a time, so the lock's hold is their throughput.
    Errors surface at the next read."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield
