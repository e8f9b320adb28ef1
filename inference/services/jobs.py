"""The job lifecycle: submit, start, heartbeat, finish, cancel, reap.

Every status change is a compare-and-set: an `update()` filtered on the
status (and attempt) it expects, whose row count says whether it won. Two
workers, a cancel and the reaper may race; exactly one of them wins each
transition, and a job finishes once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from inference import streams
from inference.errors import Conflict, InvalidInput
from inference.models import AIModel, Job, JobClient, JobStatus
from inference.queueing import enqueue_job
from inference.selectors import ai_model_get_runnable
from inference.validation import GENERATION_TASKS, InputError, ModelLimits, validate_job_input
from webhooks.services import webhooks_on_job_event

logger = logging.getLogger(__name__)


def _fingerprint(model: AIModel, raw_input: Any) -> str:
    canonical = json.dumps({"model": model.slug, "input": raw_input}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def model_limits(model: AIModel) -> ModelLimits:
    return ModelLimits(
        task=model.task,
        max_input_chars=model.max_input_chars,
        max_output_tokens=model.max_output_tokens,
        default_params=model.default_params,
    )


def job_submit(
    *,
    user: User,
    model: AIModel | str,
    input: Any,
    client: str = JobClient.REST,
    idempotency_key: str | None = None,
) -> Job:
    """Validate `input` for `model`, store a queued job and enqueue it on commit.

    Nothing is stored when the model is unknown or disabled or the input is
    invalid. With an `idempotency_key`, the same key and input return the
    job made first; the same key with other input is a Conflict.
    """
    if isinstance(model, str):
        model = ai_model_get_runnable(slug=model)
    elif not model.enabled:
        model = ai_model_get_runnable(slug=model.slug)
    try:
        validated = validate_job_input(model_limits(model), input)
    except InputError as exc:
        raise InvalidInput(exc.message, code=exc.code, param=exc.param, status=exc.status) from None

    if model.task in GENERATION_TASKS and "seed" not in validated:
        # A retried attempt then regenerates the same text, and watchers see no seam.
        validated["seed"] = secrets.randbelow(2**31)
    now = timezone.now()
    job = Job(
        id=uuid.uuid4(),
        owner=user,
        model=model,
        task=model.task,
        client=client,
        input=validated,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        idempotency_key=idempotency_key,
        request_fingerprint=_fingerprint(model, input) if idempotency_key else "",
        enqueued_at=now,
        deadline_at=now + timedelta(seconds=settings.JOB_QUEUE_TIMEOUT_SECONDS),
    )
    if idempotency_key is None:
        with transaction.atomic():
            _insert_and_enqueue(job, model)
        return job
    return _job_submit_idempotent(job, model)


def _insert_and_enqueue(job: Job, model: AIModel) -> None:
    job.save(force_insert=True)
    # Registered first, so it runs first: the log starts with `queued` before any worker writes.
    transaction.on_commit(
        lambda: _announce(job.id, job.owner_id, job.attempt, "status", {"status": JobStatus.QUEUED, "attempt": 1})
    )
    enqueue_job(job_id=job.id, attempt=job.attempt, queue=model.queue)


def _job_submit_idempotent(job: Job, model: AIModel) -> Job:
    try:
        with transaction.atomic():
            _insert_and_enqueue(job, model)
        return job
    except IntegrityError:
        existing = Job.objects.select_related("model").filter(owner=job.owner, idempotency_key=job.idempotency_key)
        first = existing.first()
        if first is None:  # the conflicting row was deleted meanwhile; let the caller retry
            raise Conflict("A request with this Idempotency-Key is in progress; retry.", code="idempotency_retry")
        if first.request_fingerprint != job.request_fingerprint:
            raise Conflict(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            ) from None
        return first


# ------------------------------------------------------------------------------
# Worker side
# ------------------------------------------------------------------------------


def job_start(*, job_id: Any, attempt: int, worker: str) -> Job | None:
    """Claim attempt `attempt` of a queued job; None when it is not ours to run."""
    now = timezone.now()
    claimed = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, attempt=attempt, deadline_at__gt=now).update(
        status=JobStatus.RUNNING,
        heartbeat_at=now,
        worker=worker[:255],
        started_at=Coalesce(F("started_at"), Value(now)),  # the first attempt's start counts
    )
    if not claimed:
        _expire_if_overdue(job_id, now)
        return None
    job = Job.objects.select_related("model").get(id=job_id)
    _announce(job.id, job.owner_id, attempt, "status", {"status": JobStatus.RUNNING, "attempt": attempt})
    webhooks_on_job_event(job.id, "start")
    return job


def job_heartbeat(*, job_id: Any, attempt: int) -> bool:
    """Renew the lease; False means the attempt is no longer ours (reaped or finished)."""
    return bool(
        Job.objects.filter(id=job_id, status=JobStatus.RUNNING, attempt=attempt).update(heartbeat_at=timezone.now())
    )


def job_cancel_requested(*, job_id: Any) -> bool:
    return Job.objects.filter(id=job_id, cancel_requested_at__isnull=False).exists()


def job_mark_first_token(*, job_id: Any, attempt: int) -> None:
    Job.objects.filter(id=job_id, attempt=attempt, status=JobStatus.RUNNING).update(first_token_at=timezone.now())


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def job_finish(
    *,
    job_id: Any,
    attempt: int,
    status: str,
    usage: Usage,
    output_text: str = "",
    output_json: Any = None,
    error_code: str = "",
    error_message: str = "",
) -> bool:
    """Store the one result of a running attempt; False if the attempt lost its job."""
    assert status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
    finished = Job.objects.filter(id=job_id, status=JobStatus.RUNNING, attempt=attempt).update(
        status=status,
        output_text=output_text,
        output_json=output_json,
        error_code=error_code,
        error_message=error_message,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        finished_at=timezone.now(),
        heartbeat_at=None,
    )
    if finished:
        owner_id = Job.objects.filter(id=job_id).values_list("owner_id", flat=True).first()
        _announce_end(job_id, owner_id, attempt, status, usage, output_json, error_code, error_message)
    return bool(finished)


# ------------------------------------------------------------------------------
# Cancel
# ------------------------------------------------------------------------------


def job_cancel(*, job: Job) -> Job:
    """Cancel a job: a queued one at once, a running one between two chunks.

    Canceling a finished job changes nothing, so a retried cancel is safe.
    """
    now = timezone.now()
    for _ in range(3):  # the job may start between our read and our write
        if Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELED, cancel_requested_at=now, finished_at=now
        ):
            job.refresh_from_db()
            _announce_end(job.id, job.owner_id, job.attempt, JobStatus.CANCELED, Usage(), None, "", "")
            return job
        running = Job.objects.filter(id=job.id, status=JobStatus.RUNNING)
        if running.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now) or running.exists():
            streams.request_cancel(job.id)
            job.refresh_from_db()
            return job
        job.refresh_from_db()
        if job.is_finished:
            return job
    return job


# ------------------------------------------------------------------------------
# The reaper
# ------------------------------------------------------------------------------


@dataclass
class ReapReport:
    requeued: int = 0
    failed: int = 0
    canceled: int = 0
    expired: int = 0
    reenqueued: int = 0


def jobs_reap() -> ReapReport:
    """Settle jobs whose worker vanished, expire overdue queued jobs, resend lost messages."""
    report = ReapReport()
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).select_related("model")
    for job in stale:
        _reap_running(job, cutoff, now, report)
    for job_id in Job.objects.filter(status=JobStatus.QUEUED, deadline_at__lte=now).values_list("id", flat=True):
        report.expired += _expire_if_overdue(job_id, now)
    resend_before = now - timedelta(seconds=settings.JOB_REENQUEUE_AFTER_SECONDS)
    overdue = Job.objects.filter(status=JobStatus.QUEUED, enqueued_at__lt=resend_before).select_related("model")
    for job in overdue:
        with transaction.atomic():
            if Job.objects.filter(id=job.id, status=JobStatus.QUEUED, enqueued_at=job.enqueued_at).update(
                enqueued_at=now
            ):
                enqueue_job(job_id=job.id, attempt=job.attempt, queue=job.model.queue)
                report.reenqueued += 1
    if any(vars(report).values()):
        logger.info("reaper: %s", report)
    return report


def _reap_running(job: Job, cutoff, now, report: ReapReport) -> None:
    # Each update re-checks the stale heartbeat: a worker that renewed its
    # lease since we read it keeps its job.
    still_stale = Job.objects.filter(id=job.id, status=JobStatus.RUNNING, attempt=job.attempt, heartbeat_at__lt=cutoff)
    if job.cancel_requested_at is not None:
        partial = _partial_output(job.id, job.attempt)
        if still_stale.update(status=JobStatus.CANCELED, output_text=partial, finished_at=now, heartbeat_at=None):
            _announce_end(job.id, job.owner_id, job.attempt, JobStatus.CANCELED, Usage(), None, "", "")
            report.canceled += 1
        return
    if job.attempt < job.max_attempts:
        with transaction.atomic():
            if still_stale.update(
                status=JobStatus.QUEUED,
                attempt=job.attempt + 1,
                heartbeat_at=None,
                worker="",
                enqueued_at=now,
                first_token_at=None,
            ):
                enqueue_job(job_id=job.id, attempt=job.attempt + 1, queue=job.model.queue)
                # Written under the new attempt: this fences the lost worker out of the log.
                status = {"status": JobStatus.QUEUED, "attempt": job.attempt + 1}
                _announce(job.id, job.owner_id, job.attempt + 1, "status", status)
                report.requeued += 1
        return
    message = f"The worker stopped responding on each of {job.max_attempts} attempts."
    if still_stale.update(
        status=JobStatus.FAILED, error_code="worker_lost", error_message=message, finished_at=now, heartbeat_at=None
    ):
        _announce_end(job.id, job.owner_id, job.attempt, JobStatus.FAILED, Usage(), None, "worker_lost", message)
        report.failed += 1


def _expire_if_overdue(job_id: Any, now) -> int:
    expired = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, deadline_at__lte=now).update(
        status=JobStatus.EXPIRED,
        error_code="deadline_exceeded",
        error_message="No worker started this job before its deadline.",
        finished_at=now,
    )
    if expired:
        attempt, owner_id = Job.objects.filter(id=job_id).values_list("attempt", "owner_id").first()
        _announce_end(job_id, owner_id, attempt, JobStatus.EXPIRED, Usage(), None, "deadline_exceeded", "")
    return expired


def _partial_output(job_id: Any, attempt: int) -> str:
    try:
        events = streams.read_events(job_id)
    except Exception:  # Redis gone: the partial text is lost, the job still ends
        logger.warning("could not read the event log of %s", job_id, exc_info=True)
        return ""
    return "".join(e.data.get("text", "") for e in events if e.type == "delta" and e.attempt == attempt)


# ------------------------------------------------------------------------------
# Events: best effort here, the database is the record of what happened
# ------------------------------------------------------------------------------


def _announce(job_id: Any, owner_id: Any, attempt: int, event_type: str, data: dict[str, Any]) -> None:
    try:
        streams.append_event(job_id, attempt, event_type, data)
        if event_type in ("status", "done"):
            streams.notify_user(owner_id, {"job": str(job_id), "status": data["status"], "attempt": attempt})
    except streams.Superseded:
        pass
    except Exception:
        # Watchers fall back to the stored job when the log is missing.
        logger.warning("could not append %s to the event log of %s", event_type, job_id, exc_info=True)


def _announce_end(job_id, owner_id, attempt, status, usage: Usage, output_json, error_code, error_message) -> None:
    if error_code:
        _announce(job_id, owner_id, attempt, "error", {"code": error_code, "message": error_message})
    data: dict[str, Any] = {"status": status, "usage": usage.as_dict()}
    if output_json is not None:
        data["output"] = output_json
    _announce(job_id, owner_id, attempt, "done", data)
    webhooks_on_job_event(job_id, "completed")
