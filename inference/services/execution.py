"""Running one attempt of a job in a worker: backend, event log, lease, result."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django import db

from inference import streams, worker_connections
from inference.backends import Backend, BackendError
from inference.lease import Lease
from inference.loaded_models import backend_for
from inference.log_writer import JobLog, LogReservation
from inference.models import Job, JobStatus, Task, finish_reason
from inference.services.events import visible_text
from inference.services.jobs import (
    Usage,
    estimate_tokens,
    job_announce_progress,
    job_finish,
    job_log_restart_floor,
    job_mark_first_token,
    job_reserve_log,
    job_start,
)

logger = logging.getLogger(__name__)

# An embedding or classification job's texts go to the backend in at most this many steps, with a
# `progress` event after each but the last: a job of many texts stays within the few events its log
# has room for before any reservation (streams.RESTART_GAP).
MAX_COMPUTE_STEPS = 16

# In a thread pool, a short answer keeps its database connection for its last write and a long
# stream gives it back after this long, so thousands of streaming jobs never hold thousands of
# connections.
HOLD_CONNECTION_SECONDS = 1.0


def _connection_pooled() -> bool:
    """Whether this process shares a pool of connections (DATABASE_POOL: a thread-pool worker).

    Then a job gives its connection back after each write: handing it back costs nothing, and a
    hundred threads that each held one would keep the others waiting for the pool.
    """
    return bool(db.connection.settings_dict.get("OPTIONS", {}).get("pool"))


def _connection_hold_seconds() -> float | None:
    """How long a stream keeps its database connection after its first token; None: to its end."""
    if _connection_pooled():
        return 0.0
    if worker_connections.one_task_at_a_time():
        # A prefork child keeps its connection between jobs anyway: giving it back mid-stream
        # only made the job reconnect (3-5 ms) to store its result.
        return None
    return HOLD_CONNECTION_SECONDS


@dataclass
class _Progress:
    """How far an attempt got: the tokens it generated, and the text watchers had from earlier attempts."""

    tokens: list[str] = field(default_factory=list)
    shown: str = ""
    # How far the attempt knows the job's log reached (JobLog.position): where its `done` goes.
    log_position: int | None = 0

    @property
    def text(self) -> str:
        """The job's output should the attempt end here. While a retry is still regenerating what
        watchers already have, that is their text: a stop or a failure never takes back words."""
        generated = "".join(self.tokens)
        return self.shown if self.shown.startswith(generated) else generated

    @property
    def completion_tokens(self) -> int:
        """The tokens of `text`: counted as generated, or, when it is the words of an attempt that
        died (its count died with it), estimated."""
        if len(self.shown) > len("".join(self.tokens)) and self.text == self.shown:
            return max(len(self.tokens), estimate_tokens(self.shown))
        return len(self.tokens)


class _Interrupted(Exception):
    """The attempt lost its lease or the log fenced it out: another attempt owns the job."""


class DatabaseUnavailable(Exception):
    """The database refused or dropped the connection while the job was being started: try again later.

    Usually it refused the connection (the claim is the first statement), nothing changed and the
    retry runs the job. Had it dropped right after the claim, the retry finds the job no longer
    queued and does nothing, and the reaper gives the job a new attempt once its lease expires.
    """


def job_execute(*, job_id: Any, attempt: int, worker: str) -> str | None:
    """Run attempt `attempt` of a job if it is still ours; returns the final status."""
    try:
        job = job_start(job_id=job_id, attempt=attempt, worker=worker)
    except (db.OperationalError, db.InterfaceError) as exc:
        # E.g. "too many clients" when a burst of jobs starts on a big thread pool at once.
        raise DatabaseUnavailable(f"job {job_id} could not be started: {exc}") from exc
    if job is None:
        return None
    if _connection_pooled():
        db.connection.close()  # the backend may take seconds to its first token
    with Lease(job.id, attempt) as lease:
        result = _run(job, lease)
        # Outside the backend's `try`: the database failing to store a result is no fault of the model.
        return None if result is None else _finish(job, lease, **result)


def _run(job: Job, lease: Lease) -> dict[str, Any] | None:
    """What the attempt ends with (keyword arguments of `_finish`), None when another attempt owns the job."""
    usage = Usage()
    progress = _Progress()
    try:
        backend = backend_for(job.model)
        usage = Usage(prompt_tokens=backend.count_tokens(backend.prompt_text(job.input)))
        if job.task in (Task.CHAT, Task.COMPLETION):
            text = _generate(job, backend, lease, progress, usage.prompt_tokens)
            usage = Usage(usage.prompt_tokens, completion_tokens=progress.completion_tokens)
            status = JobStatus.CANCELED if lease.canceled.is_set() else JobStatus.SUCCEEDED
            return {"status": status, "usage": usage, "output_text": text, "log_position": progress.log_position}
        texts = _texts(job)
        output, covered = _compute(job, backend, lease, texts)
        if covered < len(texts):  # canceled between two steps: what was done is kept, and counted
            done = backend.prompt_text({**job.input, "input": texts[:covered]})
            usage = Usage(prompt_tokens=backend.count_tokens(done))
            return {"status": JobStatus.CANCELED, "usage": usage, "output_json": output}
        return {"status": JobStatus.SUCCEEDED, "usage": usage, "output_json": output}
    except _Interrupted:
        logger.info("job %s attempt %s was superseded; dropping its result", job.id, job.attempt)
        return None
    except BackendError as exc:
        code, message = exc.code, exc.message
    except SoftTimeLimitExceeded:
        code, message = "time_limit", "The job ran past its time limit."
    except Exception as exc:
        logger.exception("job %s failed in its backend", job.id)
        code, message = "backend_error", f"The model backend failed: {exc.__class__.__name__}."
    return {
        "status": JobStatus.FAILED,
        "usage": _spent(usage, progress),
        "output_text": progress.text,
        "error_code": code,
        "error_message": message,
        "log_position": progress.log_position,
    }


def _spent(usage: Usage, progress: _Progress) -> Usage:
    """What a failed attempt costs its owner: the tokens of the answer it leaves and, once there is
    any, the prompt it read. A prompt refused as too long, or a model that failed before its first
    token, gave the user nothing and takes nothing from their day's tokens."""
    if not progress.text:
        return Usage()
    return Usage(usage.prompt_tokens, completion_tokens=progress.completion_tokens)


def _generate(job: Job, backend: Backend, lease: Lease, progress: _Progress, prompt_tokens: int) -> str:
    """Stream tokens into the log as coalesced deltas; returns the whole text.

    A retried attempt first regenerates what watchers already have (jobs are
    seeded, so it usually comes out the same) and sends only what is new; if
    it comes out different, it tells watchers to start over with a restart.
    """
    earlier = streams.read_events(job.id) if job.attempt > 1 else []
    progress.shown = visible_text(earlier)
    # Deltas go out as tokens come, coalesced; held ones go out on time even if the backend stalls.
    # Among other jobs, the process's log writer sends them: no thread waits for Redis per delta.
    position = earlier[-1].seq if earlier else 0
    log = JobLog(
        job.id, job.attempt, lease.cancel_reported, job_log_reservation(job), shown=progress.shown, position=position
    )
    with log:
        try:
            return _generate_into(job, backend, lease, progress, prompt_tokens, log)
        finally:
            progress.log_position = log.position


def job_log_reservation(job: Job) -> LogReservation:
    """The position the job's log may reach, moved by its attempt's writes to the database."""

    def reserve(upto: int) -> None:
        _giving_back_connection(lambda: job_reserve_log(job_id=job.id, upto=upto))

    def restart_floor() -> int:
        return _giving_back_connection(lambda: job_log_restart_floor(job_id=job.id))

    return LogReservation(job.log_seq_reserved, reserve, restart_floor)


def _giving_back_connection(write: Callable[[], Any]) -> Any:
    """A database write in the middle of a stream: a connection the job had given back is given back again."""
    given_back = db.connection.connection is None
    try:
        return write()
    finally:
        if given_back:
            db.connection.close()


def _generate_into(
    job: Job, backend: Backend, lease: Lease, progress: _Progress, prompt_tokens: int, log: JobLog
) -> str:
    sender = streams.DeltaSender(lambda text: _send(log, "delta", {"text": text}))
    shown = progress.shown
    tokens = progress.tokens
    resuming = bool(shown)
    generated = ""
    hold_connection = _connection_hold_seconds()
    release_connection_at = 0.0  # 0: nothing to give back
    try:
        for token in backend.stream(job.input, lease.should_stop):
            first = not tokens
            tokens.append(token)
            generated += token
            if resuming:
                if shown.startswith(generated):
                    if first:
                        _mark_first_token(job, log, prompt_tokens)
                        release_connection_at = _release_at(hold_connection)
                    continue
                resuming = False
                if generated.startswith(shown):
                    token = generated[len(shown) :]
                else:
                    sender.send_now(lambda: _send_restart(job, log))
                    token = generated
            sender.add(token)
            if first:  # after the delta is out: watchers should not wait for this write
                _mark_first_token(job, log, prompt_tokens)
                release_connection_at = _release_at(hold_connection)
            elif release_connection_at and time.monotonic() >= release_connection_at:
                # A stream can last minutes: it should not hold a database connection meanwhile.
                db.connection.close()
                release_connection_at = 0.0
            if lease.lost.is_set():
                raise _Interrupted
        if resuming and generated != shown:  # the retry ended inside what watchers already saw
            if lease.canceled.is_set():
                generated = shown  # stopped while catching up: what watchers have is the answer
            else:  # the model's answer this time is shorter
                sender.send_now(lambda: _send_restart(job, log))
                sender.add(generated)
    finally:
        try:
            # Even a failing backend's partial answer reaches watchers as it is stored; a superseded one never.
            sender.close(flush=not lease.lost.is_set())
        finally:
            # The `done` event goes out another way: everything before it must be in the log first.
            _wait_written(log)
    if lease.lost.is_set():
        raise _Interrupted
    return generated


def _mark_first_token(job: Job, log: JobLog, prompt_tokens: int) -> None:
    job_mark_first_token(
        job_id=job.id, attempt=job.attempt, prompt_tokens=prompt_tokens, log_seq_reserved=log.reserve_ahead()
    )


def _release_at(hold_seconds: float | None) -> float:
    return 0.0 if hold_seconds is None else time.monotonic() + hold_seconds


def _send_restart(job: Job, log: JobLog) -> None:
    _send(log, "status", {"status": JobStatus.RUNNING, "attempt": job.attempt, "restart": True})


def _send(log: JobLog, event_type: str, data: dict[str, Any]) -> None:
    try:
        log.send(event_type, data)
    except streams.Superseded:
        raise _Interrupted from None


def _wait_written(log: JobLog) -> None:
    try:
        log.wait_written()
    except streams.Superseded:
        raise _Interrupted from None


def _texts(job: Job) -> list[str]:
    texts = job.input["input"]
    return [texts] if isinstance(texts, str) else texts


def _compute(job: Job, backend: Backend, lease: Lease, texts: list[str]) -> tuple[dict[str, Any], int]:
    """Embed or classify the texts a step at a time (a backend call cannot be interrupted): between
    two steps a `progress` event, and a cancel stops it there. Returns the output and how many of
    the texts it covers: all, or those done before a cancel."""
    step = max(backend.texts_per_step(), math.ceil(len(texts) / MAX_COMPUTE_STEPS))
    results: list[Any] = []
    for start in range(0, len(texts), step):
        if start:
            job_announce_progress(job, completed=start, total=len(texts))
            if lease.should_stop():
                break
        results += _compute_step(job, backend, texts[start : start + step])
    if lease.lost.is_set():
        raise _Interrupted
    if job.task == Task.EMBEDDING:
        return {"embeddings": results, "dimensions": len(results[0]) if results else 0}, len(results)
    return {"results": results}, len(results)


def _compute_step(job: Job, backend: Backend, texts: list[str]) -> list[Any]:
    if job.task == Task.EMBEDDING:
        return backend.embed(texts, normalize=job.input.get("normalize", True))
    results = backend.classify(texts, job.input["labels"], multi_label=job.input.get("multi_label", False))
    return [
        {"label": max(scores, key=scores.get), "scores": dict(sorted(scores.items(), key=lambda kv: -kv[1]))}
        for scores in results
    ]


def _finish(
    job,
    lease: Lease,
    status,
    usage,
    output_text="",
    output_json=None,
    error_code="",
    error_message="",
    log_position: int | None = 0,
) -> str | None:
    lease.end()  # a heartbeat after the result is stored would find the job finished, not lost
    finished = job_finish(
        job_id=job.id,
        attempt=job.attempt,
        status=status,
        usage=usage,
        output_text=output_text,
        output_json=output_json,
        error_code=error_code,
        error_message=error_message,
        owner_id=job.owner_id,
        has_webhook=hasattr(job, "webhook"),  # job_start loaded it (a LEFT JOIN)
        log_position=log_position,
        finish_reason=finish_reason(
            task=job.task,
            status=status,
            max_tokens=job.input.get("max_tokens"),
            completion_tokens=usage.completion_tokens,
        ),
    )
    return status if finished else None
