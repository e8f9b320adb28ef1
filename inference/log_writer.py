"""One thread per worker process writes every generating job's events to the log, pipelined.

A job's thread used to make a Redis round trip for each delta it wrote. Two thread-pool
workers running 200 paced streams then made ~6,000 round trips a second from 200 threads,
each waking for its reply and waiting for the GIL behind the others: deltas came late by
seconds while the machine was half idle. Now a job's thread hands its events to the
process's `LogWriter` and goes on generating; the writer sends whatever is waiting, from
every job, in one pipeline, in the order it came, so each job's events keep their order and
fencing (streams._APPEND) still applies to every one of them.

A job learns an append's outcome a little later: `JobLog.send` raises the first failure
(Superseded, a Redis error) at the job's next call, and `JobLog.wait_written` waits until
everything handed over is in the log. Events written another way (the final `done`) must
come after that wait.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from inference import streams

logger = logging.getLogger(__name__)

# Events waiting for the writer, all jobs together; a job handing over more waits for room,
# so a stalled Redis slows generation instead of growing memory without bound.
MAX_WAITING = 20_000
# Appends per pipeline: a backlog drains in round trips of this many.
MAX_BATCH = 1000
# A busy writer writes at most once per this long: two workers running 200 paced streams
# then send ~6 appends per pipeline instead of one or two, and each write's wake-ups and
# system calls, which cost more than the appends themselves, are shared (178 -> 119 µs of
# worker CPU per token). An idle writer still writes at once.
WRITE_INTERVAL_SECONDS = 0.002
# A job waits this long for its events to be written before it gives up on them.
WRITTEN_TIMEOUT_SECONDS = 120

OnReply = Callable[[Any], None]


class LogWriter:
    """Appends events for many jobs at once, from one thread (started in the process that uses it)."""

    def __init__(self) -> None:
        self._waiting: deque[tuple[Any, int, str, dict[str, Any], OnReply]] = deque()
        self._changed = threading.Condition()
        self._pid: int | None = None

    def append(self, job_id: Any, attempt: int, event_type: str, data: dict[str, Any], on_reply: OnReply) -> None:
        """Queue an append; `on_reply` gets its reply (see streams.appended_reply) on the writer's thread."""
        with self._changed:
            self._ensure_thread()
            while len(self._waiting) >= MAX_WAITING:
                self._changed.wait()
            self._waiting.append((job_id, attempt, event_type, data, on_reply))
            if len(self._waiting) == 1:
                self._changed.notify_all()

    def _ensure_thread(self) -> None:
        # Celery's prefork pool forks after import: each child starts its own thread on first use.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._waiting.clear()
            threading.Thread(target=self._run, name="log-writer", daemon=True).start()

    def _run(self) -> None:
        last_write = 0.0
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
            # Busy: what comes until WRITE_INTERVAL after the last write joins this pipeline.
            wait = last_write + WRITE_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last_write = time.monotonic()
            with self._changed:
                batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), MAX_BATCH))]
                self._changed.notify_all()  # room for jobs waiting to hand over more
            self._write(batch)

    def _write(self, batch: list[tuple[Any, int, str, dict[str, Any], OnReply]]) -> None:
        try:
            replies = streams.append_all_reporting_cancel([append for *append, _ in batch])
        except Exception as exc:  # Redis away: every append of this batch failed with it
            replies = [exc] * len(batch)
        for (*_, on_reply), reply in zip(batch, replies, strict=True):
            try:
                on_reply(reply)
            except Exception:
                logger.exception("a log append's reply handler failed")


_writer = LogWriter()
# Jobs generating in this process. One alone (a prefork child running a local model) writes its
# events itself, a round trip each, and spares the model's threads two thread switches per delta;
# several share the writer.
_generating = 0
_generating_lock = threading.Lock()


class JobLog:
    """One attempt's events on their way to the log, through the process's LogWriter when it has company.

    Use it as a context manager: it counts the jobs generating in this process.
    """

    def __init__(self, job_id: Any, attempt: int, on_cancel: Callable[[bool], None]):
        self.job_id = job_id
        self.attempt = attempt
        self._on_cancel = on_cancel
        self._written = threading.Condition()
        self._in_flight = 0
        self._error: BaseException | None = None

    def __enter__(self) -> JobLog:
        global _generating
        with _generating_lock:
            _generating += 1
        return self

    def __exit__(self, *exc_info) -> None:
        global _generating
        with _generating_lock:
            _generating -= 1

    def send(self, event_type: str, data: dict[str, Any]) -> None:
        """Hand an event over; raises the failure of an earlier one (e.g. streams.Superseded)."""
        with self._written:
            self._raise_error()
            # Only with nothing of its own still queued, or its events could overtake each other.
            alone = _generating <= 1 and self._in_flight == 0
            self._in_flight += 1
        if alone:
            try:
                (reply,) = streams.append_all_reporting_cancel([(self.job_id, self.attempt, event_type, data)])
            except Exception as exc:
                reply = exc
            self._replied(reply)
            self._raise_error()
            return
        _writer.append(self.job_id, self.attempt, event_type, data, self._replied)

    def wait_written(self) -> None:
        """Return once every event sent is in the log; raises the first failure among them."""
        with self._written:
            if not self._written.wait_for(lambda: self._in_flight == 0, timeout=WRITTEN_TIMEOUT_SECONDS):
                raise TimeoutError(f"job {self.job_id}: events not written after {WRITTEN_TIMEOUT_SECONDS}s")
            self._raise_error()

    def _replied(self, reply: Any) -> None:
        try:
            canceled = streams.appended_reply(self.job_id, self.attempt, reply)
        except BaseException as exc:
            with self._written:
                self._error = self._error or exc
        else:
            self._on_cancel(canceled)
        with self._written:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._written.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
