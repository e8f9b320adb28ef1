"""What operators do to jobs and models from the admin: retry, requeue, try a model.

Status changes stay compare-and-set, as in jobs.py: a requeue races the
worker, the reaper and a cancel safely, and loses quietly when one of them won.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from inference.errors import Conflict
from inference.models import AIModel, Job, JobClient, JobStatus, Task
from inference.queueing import enqueue_job
from inference.services.jobs import job_announce_going_on, job_submit

logger = logging.getLogger(__name__)


def job_retry(*, job: Job) -> Job:
    """A new job with the same owner, model and input, marked as coming from the admin.

    Refused (Conflict, code `owner_inactive`) when the owner is disabled: a retry must not run work for them.
    """
    if not User.objects.filter(pk=job.owner_id, is_active=True).exists():
        raise Conflict(
            f"The owner of this job ({job.owner}) is disabled; enable the user before retrying their jobs.",
            code="owner_inactive",
        )
    return job_submit(user=job.owner, model=job.model, input=dict(job.input), client=JobClient.ADMIN)


def job_requeue(*, job: Job) -> str:
    """Unstick a job: resend a queued job's message, or give a stale running job a new attempt.

    Returns "resent" or "requeued"; raises Conflict when the job is not stuck
    (finished, or running with a fresh heartbeat).
    """
    now = timezone.now()
    job.refresh_from_db()
    if job.status == JobStatus.QUEUED:
        with transaction.atomic():
            # A duplicate message is harmless: job_start claims each attempt once.
            if Job.objects.filter(id=job.id, status=JobStatus.QUEUED, attempt=job.attempt).update(
                enqueued_at=now, deadline_at=max(job.deadline_at, now + timedelta(minutes=5))
            ):
                enqueue_job(job_id=job.id, attempt=job.attempt, queue=job.model.queue)
                job.refresh_from_db()
                return "resent"
    elif job.status == JobStatus.RUNNING:
        cutoff = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
        if job.heartbeat_at is not None and job.heartbeat_at >= cutoff:
            raise Conflict("This job's worker is alive (its heartbeat is fresh): it is not stuck.", code="not_stuck")
        next_attempt = job.attempt + 1
        with transaction.atomic():
            if Job.objects.filter(
                id=job.id, status=JobStatus.RUNNING, attempt=job.attempt, heartbeat_at=job.heartbeat_at
            ).update(
                status=JobStatus.QUEUED,
                attempt=next_attempt,
                max_attempts=max(job.max_attempts, next_attempt),
                heartbeat_at=None,
                worker="",
                enqueued_at=now,
                first_token_at=None,
                deadline_at=max(job.deadline_at, now + timedelta(minutes=5)),
            ):
                enqueue_job(job_id=job.id, attempt=next_attempt, queue=job.model.queue)
                transaction.on_commit(lambda: job_announce_going_on(job, next_attempt, JobStatus.QUEUED))
                job.refresh_from_db()
                return "requeued"
    job.refresh_from_db()
    raise Conflict(f"This job is {job.status} and cannot be requeued now.", code="not_stuck")


SAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    Task.CHAT: {"messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16},
    Task.COMPLETION: {"prompt": "Once upon a time", "max_tokens": 16},
    Task.EMBEDDING: {"input": "Djinn serves models."},
    Task.CLASSIFICATION: {"input": "I love this product.", "labels": ["positive", "negative"]},
}


@dataclass(frozen=True)
class ModelTrial:
    """The outcome of a short test job against one model."""

    job: Job
    finished: bool
    ttft_seconds: float | None
    tokens_per_second: float | None

    @property
    def output(self) -> str:
        if self.job.output_text:
            return self.job.output_text
        return "" if self.job.output_json is None else str(self.job.output_json)[:2000]


def model_trial(*, model: AIModel, user: User, timeout: float = 30.0) -> ModelTrial:
    """Run a short job on `model` as `user` and wait for it, at most `timeout` seconds."""
    job = job_submit(user=user, model=model, input=dict(SAMPLE_INPUTS[model.task]), client=JobClient.ADMIN)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.1)
    ttft = tps = None
    if job.first_token_at and job.started_at:
        ttft = (job.first_token_at - job.started_at).total_seconds()
    if job.finished_at and job.first_token_at and job.completion_tokens:
        seconds = (job.finished_at - job.first_token_at).total_seconds()
        tps = job.completion_tokens / seconds if seconds > 0 else None
    return ModelTrial(job=job, finished=job.is_finished, ttft_seconds=ttft, tokens_per_second=tps)
