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
import math
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from inference import streams
from inference.errors import Conflict
from inference.job_errors import job_error_message
from inference.models import AIModel, Job, JobClient, JobStatus
from inference.precompiled import PrecompiledUpdate
from inference.queueing import enqueue_job
from inference.selectors import ai_model_get_runnable, job_to_run_lookup
from inference.services.events import visible_text
from inference.validation import GENERATION_TASKS, ModelLimits, validate_job_input
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


# Tokenizers differ and live in the workers; admission estimates. English runs ~4 characters a token.
CHARS_PER_TOKEN_ESTIMATE = 4


def input_texts(job_input: dict[str, Any]) -> list[str]:
    """The texts a validated input gives its model: messages, a prompt, or texts and labels."""
    if "messages" in job_input:
        return [message["content"] for message in job_input["messages"]]
    if "prompt" in job_input:
        return [job_input["prompt"]]
    texts = job_input["input"]
    return [texts, *job_input.get("labels", [])] if isinstance(texts, str) else [*texts, *job_input.get("labels", [])]


def token_reservation(job_input: dict[str, Any]) -> int:
    """The tokens a job may spend: its prompt text, estimated, plus its max_tokens (at least 1)."""
    prompt = math.ceil(sum(len(text) for text in input_texts(job_input)) / CHARS_PER_TOKEN_ESTIMATE)
    return max(1, prompt + job_input.get("max_tokens", 0))


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
    job = job_build(user=user, model=model, input=input, client=client, idempotency_key=idempotency_key)
    return job_store(job)


def job_build(
    *,
    user: User,
    model: AIModel | str,
    input: Any,
    client: str = JobClient.REST,
    idempotency_key: str | None = None,
) -> Job:
    """The queued job `job_submit` would store, validated but not saved (InvalidJobInput, ModelNotFound...)."""
    if isinstance(model, str):
        model = ai_model_get_runnable(slug=model)
    elif not model.enabled:
        model = ai_model_get_runnable(slug=model.slug)
    validated = validate_job_input(model_limits(model), input)

    if model.task in GENERATION_TASKS and "seed" not in validated:
        # A retried attempt then regenerates the same text, and watchers see no seam.
        validated["seed"] = secrets.randbelow(2**31)
    now = timezone.now()
    return Job(
        id=uuid.uuid4(),
        owner=user,
        model=model,
        task=model.task,
        client=client,
        input=validated,
        input_text="\n".join(input_texts(validated)),
        reserved_tokens=token_reservation(validated),
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        idempotency_key=idempotency_key,
        request_fingerprint=_fingerprint(model, input) if idempotency_key else "",
        enqueued_at=now,
        deadline_at=now + timedelta(seconds=settings.JOB_QUEUE_TIMEOUT_SECONDS),
    )


def job_store(job: Job) -> Job:
    """Store a job from `job_build` and enqueue it on commit; with an idempotency key, the
    job stored first under that key (or a Conflict)."""
    if job.idempotency_key is None:
        # Inside a caller's transaction (admission) no savepoint: nothing here is retried.
        with transaction.atomic(savepoint=False):
            _insert_and_enqueue(job, job.model)
        return job
    return _job_submit_idempotent(job, job.model)


def _insert_and_enqueue(job: Job, model: AIModel) -> None:
    job.save(force_insert=True)
    # The message goes first, the `queued` status right behind it, only as the log's first event:
    # the worker starts no later for it, and never has its `running` followed by a stale `queued`.
    enqueue_job(job_id=job.id, attempt=job.attempt, queue=model.queue)
    transaction.on_commit(lambda: _announce_queued(job))


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


# Values no real call passes, standing in for the arguments while an update compiles (inference/precompiled.py).
_ANY_JOB = {"job_id": uuid.UUID(int=0), "attempt": 32_123, "now": datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)}
_JOB_FIELDS = {"job_id": "id", "attempt": "attempt", "now": "heartbeat_at"}


def _running_attempt(job_id: Any, attempt: int) -> QuerySet[Job]:
    return Job.objects.filter(id=job_id, status=JobStatus.RUNNING, attempt=attempt)


# Every job a worker runs is claimed, and its first token marked: both compiled once per process.
_claim = PrecompiledUpdate(
    lambda job_id, attempt, now, worker: (
        Job.objects.filter(
            id=job_id, status=JobStatus.QUEUED, attempt=attempt, deadline_at__gt=now, cancel_requested_at__isnull=True
        ),
        {
            "status": JobStatus.RUNNING,
            "heartbeat_at": now,
            "worker": worker,
            "started_at": Coalesce(F("started_at"), Value(now)),  # the first attempt's start counts
        },
    ),
    placeholders={**_ANY_JOB, "worker": "\x1fno-such-worker\x1f"},
    fields={**_JOB_FIELDS, "worker": "worker"},
)
_mark_first_token = PrecompiledUpdate(
    lambda job_id, attempt, now, prompt_tokens, log_seq_reserved: (
        _running_attempt(job_id, attempt),
        {"first_token_at": now, "prompt_tokens": prompt_tokens, "log_seq_reserved": log_seq_reserved},
    ),
    placeholders={**_ANY_JOB, "prompt_tokens": 987_654_321, "log_seq_reserved": 987_654_322},
    fields={**_JOB_FIELDS, "prompt_tokens": "prompt_tokens", "log_seq_reserved": "log_seq_reserved"},
)


def job_start(*, job_id: Any, attempt: int, worker: str) -> Job | None:
    """Claim attempt `attempt` of a queued job; None when it is not ours to run.

    A job with a cancel request is settled as canceled instead of run, and one
    that never started before its queue deadline expires.
    """
    now = timezone.now()
    job = _claim_and_load(job_id=job_id, attempt=attempt, now=now, worker=worker[:255])
    if job is None:
        queued = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, attempt=attempt)
        # Queued with a cancel request: an operator requeued a job whose cancel had not landed yet.
        canceled = queued.filter(cancel_requested_at__isnull=False)
        if not (canceled.exists() and _cancel_settle(canceled, job_id=job_id, now=now)):
            _expire_if_overdue(job_id, now)
        return None
    if attempt == 1:
        # The first event of a log whose `queued` could not be written (Redis was away): nobody saw one,
        # and watchers that did see it lose no text when `running` comes first in a log begun again.
        running = {"status": JobStatus.RUNNING, "attempt": attempt}
        _announce(job.id, job.owner_id, attempt, "status", running, log_floor=0)
    else:
        job_announce_going_on(job, attempt, JobStatus.RUNNING)
    webhooks_on_job_event(job.id, "start", has_webhook=hasattr(job, "webhook"))
    return job


def _claim_and_load(*, job_id: Any, attempt: int, now: datetime, worker: str) -> Job | None:
    """Claim the job and load it to run, with its model and its webhook (most jobs have none), in
    one statement; None when the claim changed nothing."""
    return _claim.then_lookup(job_to_run_lookup, job_id, job_id=job_id, attempt=attempt, now=now, worker=worker)


def jobs_heartbeat(*, attempts: Iterable[tuple[Any, int]]) -> dict[tuple[str, int], bool]:
    """Renew the leases of running attempts, given as (job id, attempt) pairs, all at once.

    Returns the attempts renewed, each with whether its job was asked to stop; an attempt
    missing from it is no longer the job's (reaped, or finished meanwhile).
    """
    wanted = {(str(job_id), attempt) for job_id, attempt in attempts}
    if not wanted:
        return {}
    with transaction.atomic():
        # Locked, so a reaper deciding this job is stale waits and then sees the renewal; in id
        # order, so two keepers sharing a job (an old attempt and its successor) cannot deadlock.
        running = (
            Job.objects.select_for_update()
            .filter(id__in={job_id for job_id, _ in wanted}, status=JobStatus.RUNNING)
            .order_by("id")
            .values_list("id", "attempt", "cancel_requested_at")
        )
        renewed = {
            (str(job_id), attempt): cancel_requested_at is not None
            for job_id, attempt, cancel_requested_at in running
            if (str(job_id), attempt) in wanted
        }
        if renewed:
            Job.objects.filter(id__in=[job_id for job_id, _ in renewed]).update(heartbeat_at=timezone.now())
    return renewed


def job_mark_first_token(*, job_id: Any, attempt: int, prompt_tokens: int, log_seq_reserved: int) -> None:
    """Record when the first token came, and the prompt's size: a job settled without its worker still has it.

    It also reserves the log's positions (`log_seq_reserved`, never less than the job had: see
    LogReservation.ahead), sparing most jobs a write of their own for it in the middle of their stream.
    """
    _mark_first_token(
        job_id=job_id,
        attempt=attempt,
        now=timezone.now(),
        prompt_tokens=prompt_tokens,
        log_seq_reserved=log_seq_reserved,
    )


def job_reserve_log(*, job_id: Any, upto: int) -> None:
    """Let the job's event log reach `upto` (streams.RESERVED_EVENTS); a reservation never goes back.

    From a streaming job: tried again through a dropped connection (the write is idempotent).
    """

    def reserve() -> None:
        Job.objects.filter(id=job_id).update(log_seq_reserved=Greatest(F("log_seq_reserved"), Value(upto)))

    _through_a_dropped_connection(job_id, reserve, lambda: False, doing="its log's positions were reserved")


def job_log_restart_floor(*, job_id: Any) -> int:
    """Where the job's lost log starts again: above every position it may have reached. The restarted
    log's own events are reserved at once, so a log lost again starts above them in turn (a retry
    through a dropped connection may skip further: any floor above the reservation will do)."""

    def restart_floor() -> int:
        with transaction.atomic():
            reserved = Job.objects.select_for_update().values_list("log_seq_reserved", flat=True).get(id=job_id)
            floor = streams.restart_floor(reserved)
            Job.objects.filter(id=job_id).update(log_seq_reserved=floor + streams.RESERVED_EVENTS)
        return floor

    return _through_a_dropped_connection(job_id, restart_floor, lambda: False, doing="its lost log was given a start")


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


def _result_values(
    *, status, output_text, error_code, error_message, prompt_tokens, completion_tokens, now
) -> dict[str, Any]:
    return {
        "status": status,
        "output_text": output_text,
        "error_code": error_code,
        "error_message": error_message,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "finished_at": now,
        "heartbeat_at": None,
    }


# Every generation job ends here: compiled once per process. Building and compiling it at each call cost
# ~0.2 ms of CPU under the GIL in the job's thread, and when a burst of streams ends together the process's
# log writer, sending every other stream's deltas, waits behind those threads.
_store_result = PrecompiledUpdate(
    lambda job_id, attempt, **result: (_running_attempt(job_id, attempt), _result_values(**result)),
    placeholders={
        **_ANY_JOB,
        "status": "\x1fno-such-status\x1f",
        "output_text": "\x1fno-such-output\x1f",
        "error_code": "\x1fno-such-code\x1f",
        "error_message": "\x1fno-such-message\x1f",
        "prompt_tokens": 987_654_321,
        "completion_tokens": 987_654_322,
    },
    fields={
        **_JOB_FIELDS,
        "status": "status",
        "output_text": "output_text",
        "error_code": "error_code",
        "error_message": "error_message",
        "prompt_tokens": "prompt_tokens",
        "completion_tokens": "completion_tokens",
    },
)


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
    owner_id: Any = None,
    has_webhook: bool | None = None,
    log_position: int | None = 0,
    finish_reason: str | None = None,
) -> bool:
    """Store the one result of a running attempt; False if the attempt lost its job.

    A worker passes the job's `owner_id` and `has_webhook` as it started the job with them
    (neither changes after creation), sparing a query at the end of every job, and how far it
    knows the job's log reached (`log_position`, None if it could not repair a log that lost
    events): the `done` goes into the log only if the log is still there, else watchers get
    the end from the database. A text generation's `finish_reason` (`Job.finish_reason`, which
    the stored job gives replays) goes into its `done`.
    """
    assert status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
    result = dict(
        status=status,
        output_text=output_text,
        error_code=error_code,
        error_message=error_message,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        now=timezone.now(),
    )

    def store() -> int:
        if output_json is None:
            return _store_result(job_id=job_id, attempt=attempt, **result)
        # Embeddings and classifications: rarer, and their model's work dwarfs compiling this.
        return _running_attempt(job_id, attempt).update(**_result_values(**result), output_json=output_json)

    def stored_before() -> bool:
        """Whether this very call stored it (`now` is its own), on a try that lost only its reply."""
        return Job.objects.filter(id=job_id, attempt=attempt, status=status, finished_at=result["now"]).exists()

    finished = bool(_through_a_dropped_connection(job_id, store, stored_before))
    if finished:
        if owner_id is None or has_webhook is None:
            owner_id, hook = Job.objects.filter(id=job_id).values_list("owner_id", "webhook__job_id").first()
            has_webhook = hook is not None
        _announce_end(
            job_id,
            owner_id,
            attempt,
            status,
            usage,
            output_json,
            error_code,
            error_message,
            has_webhook=has_webhook,
            log_floor=None if log_position is None else max(log_position, 1),
            finish_reason=finish_reason,
        )
    return bool(finished)


def _through_a_dropped_connection(
    job_id: Any, store: Callable[[], Any], stored_before: Callable[[], bool], doing: str = "the result was stored"
) -> Any:
    """`store()`, tried again on a new connection while the database is away (a restart, a failover).

    A job's result is minutes of a model's work: dropping it because PostgreSQL restarted as it
    ended made the reaper run the whole job again once its lease expired. A retry first asks
    `stored_before()`: the dropped try may have committed and lost only its reply.
    """
    # Past the attempt's lease (its last heartbeat may be a beat old), the reaper may hand the job on.
    deadline = time.monotonic() + settings.JOB_LEASE_SECONDS - settings.JOB_HEARTBEAT_SECONDS
    pause = 0.1
    retrying = False
    while True:
        try:
            return (retrying and stored_before()) or store()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            logger.warning("job %s: the database dropped its connection as %s (%s); retrying", job_id, doing, exc)
            connection.close()  # the next query connects anew
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
            retrying = True


# ------------------------------------------------------------------------------
# Cancel
# ------------------------------------------------------------------------------


def job_cancel(*, job: Job) -> Job:
    """Cancel a job: a queued one at once, a running one between two chunks.

    Canceling a finished job changes nothing, so a retried cancel is safe.
    """
    now = timezone.now()
    for _ in range(3):  # the job may start between our read and our write
        # Only a requeued retry has text in its log that watchers already saw.
        queued = Job.objects.filter(id=job.id, status=JobStatus.QUEUED, attempt=job.attempt)
        if _cancel_settle(queued, job_id=job.id, now=now, keep_output=job.attempt > 1):
            job.refresh_from_db()
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


def _cancel_settle(candidates: QuerySet[Job], *, job_id: Any, now, keep_output: bool = True) -> bool:
    """End the job as canceled if it still matches `candidates`; False if another change won.

    The output kept is the text watchers were shown, read from the event log:
    a retry never re-sends what watchers already have, so the current
    attempt's deltas alone would lose the start of the answer.
    """
    text = _partial_output(job_id) if keep_output else ""
    completion_tokens = estimate_tokens(text)
    settled = candidates.update(
        status=JobStatus.CANCELED,
        output_text=text,
        completion_tokens=completion_tokens,
        cancel_requested_at=Coalesce(F("cancel_requested_at"), Value(now)),
        finished_at=now,
        heartbeat_at=None,
    )
    if settled:
        attempt, owner_id, prompt_tokens = (
            Job.objects.filter(id=job_id).values_list("attempt", "owner_id", "prompt_tokens").first()
        )
        usage = Usage(prompt_tokens, completion_tokens)
        _announce_end(job_id, owner_id, attempt, JobStatus.CANCELED, usage, None, "", "")
    return bool(settled)


def estimate_tokens(text: str) -> int:
    """Tokens in `text` when the model's tokenizer is not at hand: ~4 characters a token.

    Used only when a job is settled without its worker (the worker counts
    exactly, with the model's own tokenizer, but it is gone).
    """
    return math.ceil(len(text) / 4)


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
    if job.cancel_requested_at is None:
        # A cancel may land after our read: neither a retry nor a failure may then overwrite it.
        uncanceled = still_stale.filter(cancel_requested_at__isnull=True)
        if job.attempt < job.max_attempts:
            if _requeue(job, uncanceled, now):
                report.requeued += 1
                return
        elif _fail_lost(job, uncanceled, now):
            report.failed += 1
            return
        if not still_stale.filter(cancel_requested_at__isnull=False).exists():
            return  # a heartbeat or the worker's own result came first
    if _cancel_settle(still_stale, job_id=job.id, now=now):
        report.canceled += 1


def _requeue(job: Job, candidates: QuerySet[Job], now) -> bool:
    next_attempt = job.attempt + 1
    with transaction.atomic():
        requeued = candidates.update(
            status=JobStatus.QUEUED,
            attempt=next_attempt,
            heartbeat_at=None,
            worker="",
            enqueued_at=now,
            first_token_at=None,
            # The queue deadline is for the wait in the queue: the retry gets a full one.
            deadline_at=max(job.deadline_at, now + timedelta(seconds=settings.JOB_QUEUE_TIMEOUT_SECONDS)),
        )
        if requeued:
            enqueue_job(job_id=job.id, attempt=next_attempt, queue=job.model.queue)
            # Written under the new attempt: this fences the lost worker out of the log, even one gone.
            job_announce_going_on(job, next_attempt, JobStatus.QUEUED)
    return bool(requeued)


def _fail_lost(job: Job, candidates: QuerySet[Job], now) -> bool:
    message = f"The worker stopped responding on each of {job.max_attempts} attempts."
    failed = candidates.update(
        status=JobStatus.FAILED, error_code="worker_lost", error_message=message, finished_at=now, heartbeat_at=None
    )
    if failed:
        _announce_end(job.id, job.owner_id, job.attempt, JobStatus.FAILED, Usage(), None, "worker_lost", message)
    return bool(failed)


EXPIRED_MESSAGE = "No worker started this job before its deadline."


def _expire_if_overdue(job_id: Any, now) -> int:
    expired = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, deadline_at__lte=now).update(
        status=JobStatus.EXPIRED,
        error_code="deadline_exceeded",
        error_message=EXPIRED_MESSAGE,
        finished_at=now,
    )
    if expired:
        attempt, owner_id = Job.objects.filter(id=job_id).values_list("attempt", "owner_id").first()
        _announce_end(job_id, owner_id, attempt, JobStatus.EXPIRED, Usage(), None, "deadline_exceeded", EXPIRED_MESSAGE)
    return expired


def _partial_output(job_id: Any) -> str:
    """The answer watchers were shown: every attempt's deltas since the last restart."""
    try:
        events = streams.read_events(job_id)
    except Exception:  # Redis gone: the partial text is lost, the job still ends
        logger.warning("could not read the event log of %s", job_id, exc_info=True)
        return ""
    return visible_text(events)


# ------------------------------------------------------------------------------
# Events: best effort here, the database is the record of what happened
# ------------------------------------------------------------------------------


# What a status or an end is appended with: the log must be there. One that is gone (expired, or lost
# with a Redis that restarted empty) may have had events watchers read; begun again at 1, it would
# show them the wrong part of the story, while a missing log is rebuilt from the database.
LOG_MUST_EXIST = 1


def _announce(
    job_id: Any,
    owner_id: Any,
    attempt: int,
    event_type: str,
    data: dict[str, Any],
    log_floor: int | None = LOG_MUST_EXIST,
) -> None:
    """Append an event to the job's log, and tell its owner's tabs of a status; `log_floor` None: tell the tabs only."""
    try:
        if event_type in ("status", "done"):
            change = {"job": str(job_id), "status": data["status"], "attempt": attempt}
            if "usage" in data:  # the job has ended: its tabs show what it cost without a reload
                change["tokens"] = data["usage"]["total_tokens"]
            if log_floor is None:
                streams.notify_user(owner_id, change)
            else:
                streams.append_event_notifying(
                    job_id, attempt, event_type, data, owner_id=owner_id, change=change, floor=log_floor
                )
        elif log_floor is not None:
            streams.append_event(job_id, attempt, event_type, data, floor=log_floor)
    except streams.Superseded:
        pass
    except streams.LogLost:
        logger.info("the event log of %s lost events; its watchers get the rest from the database", job_id)
    except Exception:
        # Watchers fall back to the stored job when the log is missing.
        logger.warning("could not append %s to the event log of %s", event_type, job_id, exc_info=True)


def job_announce_going_on(job: Job, attempt: int, status: str) -> None:
    """Announce that a job goes on after an attempt ended (queued again, running again).

    Its log must be there: one lost with Redis while the worker that knew its position died too
    (a power cut takes both) starts again above every position a watcher can hold, with this
    status as a restart, so watchers coming back drop what the earlier attempt showed them.
    """
    data = {"status": status, "attempt": attempt}
    change = {"job": str(job.id), "status": status, "attempt": attempt}
    try:
        try:
            streams.append_event_notifying(
                job.id, attempt, "status", data, owner_id=job.owner_id, change=change, floor=LOG_MUST_EXIST
            )
        except streams.LogLost:
            floor = job_log_restart_floor(job_id=job.id)
            job.log_seq_reserved = floor + streams.RESERVED_EVENTS  # for the attempt this job starts
            streams.reseed(job.id, attempt, "", floor, status=status)
            logger.info("the event log of %s was lost; it starts again from %s", job.id, floor + 1)
    except streams.Superseded:
        pass
    except Exception:
        logger.warning("could not append %s to the event log of %s", status, job.id, exc_info=True)


def job_announce_progress(job: Job, *, completed: int, total: int) -> None:
    """Tell a job's watchers how many of its texts are done (embeddings, classifications)."""
    _announce(job.id, job.owner_id, job.attempt, "progress", {"completed": completed, "total": total})


def _announce_queued(job: Job) -> None:
    change = {"job": str(job.id), "status": JobStatus.QUEUED, "attempt": job.attempt}
    data = {"status": JobStatus.QUEUED, "attempt": job.attempt}
    try:
        streams.append_first_notifying(job.id, job.attempt, "status", data, owner_id=job.owner_id, change=change)
    except Exception:
        logger.warning("could not append queued to the event log of %s", job.id, exc_info=True)


def _announce_end(
    job_id,
    owner_id,
    attempt,
    status,
    usage: Usage,
    output_json,
    error_code,
    error_message,
    has_webhook=None,
    log_floor: int | None = LOG_MUST_EXIST,
    finish_reason: str | None = None,
) -> None:
    if error_code:
        message = job_error_message(code=error_code, message=error_message)  # the log has no reader in particular
        _announce(job_id, owner_id, attempt, "error", {"code": error_code, "message": message}, log_floor)
    data: dict[str, Any] = {"status": status, "usage": usage.as_dict()}
    if output_json is not None:
        data["output"] = output_json
    if finish_reason is not None:
        data["finish_reason"] = finish_reason
    _announce(job_id, owner_id, attempt, "done", data, log_floor)
    webhooks_on_job_event(job_id, "completed", has_webhook=has_webhook)
