"""Reading a job's events: the live log first, the stored job when the log is gone.

Watchers (runjob, the websocket consumer, the SSE view, the OpenAI facade)
all follow a job through here, so they all see the same sequence: every
event after `after`, exactly once, in order, ending with `done`.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from inference import streams
from inference.db_threads import run_db
from inference.event_loops import one_per_event_loop
from inference.job_errors import job_error_message
from inference.log_tail import log_tail
from inference.models import Job
from inference.selectors import jobs_finished_among
from inference.streams import Event

# How long a watcher waits on a silent log before it asks the database
# whether the job ended without a `done` (a worker killed right after commit).
SILENCE_CHECK_MS = 2000
# Watchers asking within this long of each other share one query (FinishedJobs).
FINISHED_CHECK_GATHER_SECONDS = 0.05
# Events read per round trip: a slow watcher reads, sends, then reads again,
# so what it holds in memory stays bounded however far behind it is.
READ_BATCH = 256
# Digits only (str.isdigit() also takes "²"), and few enough for a Redis stream id (< 2**64).
RESUME_POINT = re.compile(r"[0-9]{1,18}")


def resume_point(raw: str) -> int | None:
    """The sequence number a watcher resumes after, or None when `raw` is not one."""
    return int(raw) if RESUME_POINT.fullmatch(raw) else None


def job_replay_events(job: Job) -> list[Event]:
    """The events of a finished job, rebuilt from what PostgreSQL stored."""
    events = [Event(1, "status", job.attempt, {"status": "running", "attempt": job.attempt})]
    if job.output_text:
        events.append(Event(len(events) + 1, "delta", job.attempt, {"text": job.output_text}))
    if job.error_code:
        events.append(
            Event(
                len(events) + 1,
                "error",
                job.attempt,
                {"code": job.error_code, "message": job_error_message(code=job.error_code, message=job.error_message)},
            )
        )
    done: dict[str, Any] = {
        "status": job.status,
        "usage": {
            "prompt_tokens": job.prompt_tokens,
            "completion_tokens": job.completion_tokens,
            "total_tokens": job.total_tokens,
        },
    }
    if job.output_json is not None:
        done["output"] = job.output_json
    if (reason := job.finish_reason) is not None:
        done["finish_reason"] = reason
    events.append(Event(len(events) + 1, "done", job.attempt, done))
    return events


def job_replay_after(job: Job, after: int) -> list[Event]:
    """What a watcher at `after` needs once the job's log has expired, rebuilt from PostgreSQL.

    From the start (`after` 0) it is the whole rebuilt log: `status`, one
    `delta` with the stored text, `error` if any, `done`. From 1, past the
    opening status (no log holds text at 1), it is the rest of that log. From
    further on, the watcher followed a log that is gone and may hold any part
    of the text: it gets a `status` with `restart: true` and then the whole
    text, so a client that concatenates deltas since the last restart (as
    every client must, retries can restart) ends with exactly the stored
    text. Sequence numbers go on from `after`; a watcher that reads part of
    this and reconnects is told to start over again, never left short.
    """
    rebuilt = job_replay_events(job)
    if after == 0:
        return rebuilt
    rest = rebuilt[1:]
    if job.output_text and after > 1:
        rest = [Event(0, "status", job.attempt, {"status": "running", "attempt": job.attempt, "restart": True}), *rest]
    return [replace(event, seq=after + index) for index, event in enumerate(rest, start=1)]


def _ending(job: Job, late: list[Event], after: int, newest: Event | None, log: list[Event]) -> list[Event]:
    """What a watcher at `after` still needs once the job is finished and its log went quiet.

    `late` is what the log holds past `after`, `newest` its last event (None: it expired or was
    lost). A log that ends without a `done` for this watcher (its worker died between storing the
    result and saying so, or Redis was away as the job ended) is ended here, from the stored job;
    should the text the watcher then shows differ from the stored one (Redis came back with
    events missing), a restart and the stored text come first. That text is read from the whole
    `log`, which the caller reads only when `_log_needed`.
    """
    if late and late[-1].type == "done":
        return late
    if newest is None:
        return job_replay_after(job, after)
    after = late[-1].seq if late else after
    if newest.type == "done" and newest.seq <= after:
        return []
    stored = job_replay_events(job)
    rest = [stored[-1]]
    if visible_text([event for event in log if event.seq <= after]) != job.output_text:
        restart = Event(0, "status", job.attempt, {"status": "running", "attempt": job.attempt, "restart": True})
        rest = [restart, *stored[1:]]
    return [*late, *(replace(event, seq=after + index) for index, event in enumerate(rest, start=1))]


def _log_needed(late: list[Event], after: int, newest: Event | None) -> bool:
    """Whether `_ending` ends the log itself, and so needs the whole log to know what the watcher shows."""
    if (late and late[-1].type == "done") or newest is None:
        return False
    return not (newest.type == "done" and newest.seq <= (late[-1].seq if late else after))


def job_events_follow(*, job_id: Any, after: int = 0, poll_ms: int = SILENCE_CHECK_MS) -> Iterator[Event]:
    """Every event after `after`, live, ending with `done` (blocking; for sync callers)."""
    while True:
        events = streams.wait_events(job_id, after, poll_ms)
        for event in events:
            yield event
            after = event.seq
            if event.type == "done":
                return
        if events:
            continue
        job = Job.objects.get(id=job_id)
        if job.is_finished:
            late, newest = streams.read_events(job_id, after), streams.newest_event(job_id)
            log = streams.read_events(job_id) if _log_needed(late, after, newest) else []
            yield from _ending(job, late, after, newest, log)
            return


async def job_events_follow_async(
    *, job_id: Any, after: int = 0, poll_ms: int = SILENCE_CHECK_MS, yield_idle: bool = False
) -> AsyncIterator[Event | None]:
    """Every event after `after`, live, ending with `done`; for daphne's event loop.

    It reads the log by position, then takes the live tail from the event loop's shared
    subscription (log_tail.py), going back to the log whenever the tail has a gap.
    With `yield_idle`, a None marks each silent `poll_ms` (SSE sends a keepalive then).
    """
    async with log_tail().follow(job_id) as inbox:
        read_log, first_read = True, True
        while True:
            if read_log:
                events = await streams.aread_events(job_id, after, count=READ_BATCH)
                read_log = len(events) == READ_BATCH  # a full batch: the log may hold more
                # Nothing at the first look: the job may have ended long ago (its log expired, or read
                # to its end already); ask at once rather than after a silence.
                silent, first_read = first_read and not events, False
            else:
                events, read_log = await inbox.take(after, poll_ms / 1000)
                silent = not events and not read_log
            for event in events:
                yield event
                after = event.seq
                if event.type == "done":
                    return
            if not silent:
                continue
            if not await finished_jobs().finished(job_id):
                if yield_idle:
                    yield None
                continue
            job = await run_db(Job.objects.get, id=job_id)
            late, newest = await streams.aread_events(job_id, after), await streams.anewest_event(job_id)
            log = await streams.aread_events(job_id) if _log_needed(late, after, newest) else []
            for event in _ending(job, late, after, newest, log):
                yield event
            return


class EventsReadAhead:
    """A job's events (job_events_follow_async), followed before the caller knows whether they may see them.

    Subscribing to the log and reading it are a Redis round trip each: started while the
    database says whose job it is, the first event is waiting when the answer comes (0.4 ms
    sooner at a websocket client). Iterate it once the caller is allowed, else `abandon()` it;
    nothing is sent anywhere until then. One dropped unused (a streamed response never
    iterated: its client left first) stops following when it is garbage.
    """

    def __init__(self, *, job_id: Any, after: int, **follow: Any):
        self.job_id = job_id
        self._events = job_events_follow_async(job_id=job_id, after=after, **follow)
        self._first = asyncio.ensure_future(anext(self._events))
        weakref.finalize(self, self._first.cancel)

    async def __aiter__(self) -> AsyncIterator[Event | None]:
        try:
            try:
                yield await self._first
            except StopAsyncIteration:
                return
            async for event in self._events:
                yield event
        finally:
            await self.abandon()

    async def abandon(self) -> None:
        """Stop following (again is harmless): the pending read first, as a generator cannot close
        while it runs, then the follow itself, which unsubscribes from the log."""
        self._first.cancel()
        await asyncio.wait([self._first])
        await self._events.aclose()


class FinishedJobs:
    """Answers silent watchers asking whether their job finished, all those asking at once in one query.

    Every watcher of a quiet job asks every SILENCE_CHECK_MS: 200 watchers waiting for their
    jobs to start made 200 queries, daphne's busiest work while the first streams began.
    """

    def __init__(self) -> None:
        self._asking: dict[str, list[asyncio.Future]] = {}
        self._checking: asyncio.Task | None = None  # held: the loop keeps only a weak reference

    async def finished(self, job_id: Any) -> bool:
        loop = asyncio.get_running_loop()
        if not self._asking:
            loop.call_later(FINISHED_CHECK_GATHER_SECONDS, self._start_check)
        answer = loop.create_future()
        self._asking.setdefault(str(job_id), []).append(answer)
        return await answer

    def _start_check(self) -> None:
        self._checking = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        asking, self._asking = self._asking, {}
        try:
            finished = await run_db(jobs_finished_among, job_ids=list(asking))
        except Exception as exc:
            for answers in asking.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(exc)
            return
        for job_id, answers in asking.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(job_id in finished)


@one_per_event_loop
def finished_jobs() -> FinishedJobs:
    """The running event loop's FinishedJobs."""
    return FinishedJobs()


def visible_text(events: list[Event]) -> str:
    """The answer a watcher shows after these events: deltas since the last restart."""
    text: list[str] = []
    for event in events:
        if event.type == "status" and event.data.get("restart"):
            text.clear()
        elif event.type == "delta":
            text.append(event.data["text"])
    return "".join(text)
