"""One thread per worker process writes every generating job's events to the log, pipelined.

A job's thread used to make a Redis round trip for each delta it wrote. Two thread-pool
workers running 200 paced streams then made ~6,000 round trips a second from 200 threads,
each waking for its reply and waiting for the GIL behind the others: deltas came late by
seconds while the machine was half idle. Now a job's thread hands its events to the
process's `LogWriter` and goes on generating; the writer sends whatever is waiting, from
every job, in one pipeline, in the order it came, so each job's events keep their order and
fencing (streams._APPEND) still applies to every one of them.

A job learns an append's outcome a little later: `JobLog.send` raises the first failure
(Superseded, say) at the job's next call, and `JobLog.wait_written` waits until
everything handed over is in the log. Events written another way (the final `done`) must
come after that wait.

Redis going away, or coming back empty, is no failure of the job: its model goes on
generating while the log cannot be written, and once Redis answers again the log is
re-seeded above every position a watcher can hold (above the job's reservation, kept in
PostgreSQL: streams.RESERVED_EVENTS), with a restart and the whole text so far
(streams.reseed). Watchers reconnecting with `after=N` then show exactly that text.
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
# While Redis is away, a generating job tries to re-seed its log at most this often.
REPAIR_INTERVAL_SECONDS = 0.5
# A job that ends while Redis is away waits this long for it before it stores its result anyway
# (watchers then rebuild the answer from the database).
REPAIR_AT_END_SECONDS = 10.0

OnReply = Callable[[Any], None]


class LogWriter:
    """Appends events for many jobs at once, from one thread (started in the process that uses it)."""

    def __init__(self) -> None:
        self._waiting: deque[tuple[streams.Append, OnReply]] = deque()
        self._changed = threading.Condition()
        self._pid: int | None = None

    def append(self, append: streams.Append, on_reply: OnReply) -> None:
        """Queue an append; `on_reply` gets its reply (see streams.appended_reply) on the writer's thread."""
        with self._changed:
            self._ensure_thread()
            while len(self._waiting) >= MAX_WAITING:
                self._changed.wait()
            self._waiting.append((append, on_reply))
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

    def _write(self, batch: list[tuple[streams.Append, OnReply]]) -> None:
        try:
            replies = streams.append_all_reporting_cancel([append for append, _ in batch])
        except Exception as exc:  # Redis away: every append of this batch failed with it
            replies = [exc] * len(batch)
        for (_, on_reply), reply in zip(batch, replies, strict=True):
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


class LogReservation:
    """The position a job's log may reach, as PostgreSQL keeps it (streams.RESERVED_EVENTS), and
    the writes that move it: `reserve(upto)`, and `restart_floor()`, which reserves past a lost
    log's new start and returns it."""

    def __init__(self, reserved: int, reserve: Callable[[int], None], restart_floor: Callable[[], int]):
        self.reserved = reserved
        self._reserve = reserve
        self._restart_floor = restart_floor

    def cover(self, highest: int) -> None:
        """Before an append that may take the log to `highest`: reserve more if it could pass the reservation."""
        if highest > self.reserved + streams.UNRESERVED_EVENTS:
            self._reserve(highest + streams.RESERVED_EVENTS)
            self.reserved = highest + streams.RESERVED_EVENTS

    def ahead(self, highest: int) -> int:
        """The reservation to write along with another write of the attempt's (its first token's mark),
        for the log to reach `highest` and well past it. Only the running attempt writes one: the
        reservation it started with (or a later one of its own) is the job's, and this is never less."""
        self.reserved = max(self.reserved, highest + streams.RESERVED_EVENTS)
        return self.reserved

    def restart_floor(self) -> int:
        floor = self._restart_floor()
        self.reserved = max(self.reserved, floor + streams.RESERVED_EVENTS)
        return floor


class JobLog:
    """One attempt's events on their way to the log, through the process's LogWriter when it has company.

    Use it as a context manager: it counts the jobs generating in this process. `position` is
    the highest sequence number the attempt knows the log reached: each append carries it, and
    the log refuses one it is behind (streams.LogLost). It is None once the attempt ended
    without repairing a log that lost events.
    """

    def __init__(
        self,
        job_id: Any,
        attempt: int,
        on_cancel: Callable[[bool], None],
        reservation: LogReservation,
        *,
        shown: str = "",
        position: int = 0,
    ):
        """`shown`: the text watchers already have from earlier attempts, at `position` in the log."""
        self.job_id = job_id
        self.attempt = attempt
        self.position: int | None = position
        self._on_cancel = on_cancel
        self._reservation = reservation
        self._written = threading.Condition()
        self._in_flight = 0
        self._error: BaseException | None = None
        # What a watcher shows once every event sent is in the log, kept for a re-seed.
        self._text: list[str] = [shown] if shown else []
        self._lost = False  # Redis was away or lost events: re-seed before appending again
        self._next_repair = 0.0
        self._restart_at: int | None = None  # where the re-seed of a lost log starts, once reserved

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
            self._remember(event_type, data)
            lost = self._lost
            highest = self._highest_next()
        if lost:
            # The event is in the text a re-seed sends: generation goes on while Redis is away.
            if time.monotonic() >= self._next_repair:
                self._repair()
            return
        self._reservation.cover(highest)
        with self._written:
            # Only with nothing of its own still queued, or its events could overtake each other.
            alone = _generating <= 1 and self._in_flight == 0
            self._in_flight += 1
            floor = self.position
        append = (self.job_id, self.attempt, event_type, data, floor)
        if alone:
            try:
                (reply,) = streams.append_all_reporting_cancel([append])
            except Exception as exc:
                reply = exc
            self._replied(reply)
            self._raise_error()
            return
        _writer.append(append, self._replied)

    def reserve_ahead(self) -> int:
        """The log reservation to write with the first token's mark (LogReservation.ahead)."""
        with self._written:
            highest = self._highest_next()
        return self._reservation.ahead(highest)

    def _highest_next(self) -> int:
        """Where the next event lands in the log at the most, every append in flight before it (hold `_written`)."""
        return (self.position or 0) + self._in_flight + 1

    def wait_written(self) -> None:
        """Return once every event sent is in the log; raises the first failure among them.

        A log that lost events is re-seeded first, if Redis answers within REPAIR_AT_END_SECONDS;
        past that the attempt ends without its log (`position` None).
        """
        self._wait_replied()
        deadline = time.monotonic() + REPAIR_AT_END_SECONDS
        while self._lost:
            if time.monotonic() >= deadline:
                logger.warning(
                    "job %s: its event log is still unreachable; watchers will get the stored answer", self.job_id
                )
                self.position = None
                return
            time.sleep(max(0.0, self._next_repair - time.monotonic()))
            self._repair()

    def _wait_replied(self) -> None:
        with self._written:
            if not self._written.wait_for(lambda: self._in_flight == 0, timeout=WRITTEN_TIMEOUT_SECONDS):
                raise TimeoutError(f"job {self.job_id}: events not written after {WRITTEN_TIMEOUT_SECONDS}s")
            self._raise_error()

    def _remember(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type == "delta":
            self._text.append(data["text"])
        elif event_type == "status" and data.get("restart"):
            self._text.clear()

    def _repair(self) -> None:
        """Re-seed the log once every append sent has its reply; if Redis is still away, try again later."""
        self._wait_replied()  # each lands, or fails with the outage, before the re-seed that covers it
        if self._restart_at is None:
            # Above the reservation, not just this attempt's position: the other writers' statuses may be past it.
            self._restart_at = max(self.position or 0, self._reservation.restart_floor())
        with self._written:
            text, floor = "".join(self._text), self._restart_at
        try:
            position = streams.reseed(self.job_id, self.attempt, text, floor)
        except streams.REDIS_UNREACHABLE:
            self._next_repair = time.monotonic() + REPAIR_INTERVAL_SECONDS
            return
        with self._written:
            self.position = max(position, floor)
            self._lost = False
        self._restart_at = None
        logger.info("job %s: its event log is written again, from %s on", self.job_id, floor + 1)

    def _replied(self, reply: Any) -> None:
        seq, lost = 0, None
        try:
            seq, canceled = streams.appended_reply(self.job_id, self.attempt, reply)
        except (streams.LogLost, *streams.REDIS_UNREACHABLE) as exc:
            lost = streams.describe(exc)
        except BaseException as exc:
            with self._written:
                self._error = self._error or exc
        else:
            # The attempt never writes a log's first event (its `running` came before): a log that
            # starts with one of its events was lost after that, and is re-seeded too.
            if seq == 1:
                lost = "it began again with this attempt's event"
            self._on_cancel(canceled)
        with self._written:
            newly_lost = lost is not None and not self._lost
            self._lost = self._lost or lost is not None
            self.position = max(self.position or 0, seq)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._written.notify_all()
        if newly_lost:  # once per outage, not for every append it took
            logger.warning("job %s: its event log cannot be written (%s); it goes on", self.job_id, lost)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
