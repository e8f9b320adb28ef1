"""Reading a job's events: the live log first, the stored job when the log is gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inference import streams
from inference.models import Job
from inference.streams import Event


def job_replay_events(job: Job) -> list[Event]:
    """The events of a finished job, rebuilt from what PostgreSQL stored."""
    events = [Event(1, "status", job.attempt, {"status": "running", "attempt": job.attempt})]
    if job.output_text:
        events.append(Event(len(events) + 1, "delta", job.attempt, {"text": job.output_text}))
    if job.error_code:
        events.append(
            Event(len(events) + 1, "error", job.attempt, {"code": job.error_code, "message": job.error_message})
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
    events.append(Event(len(events) + 1, "done", job.attempt, done))
    return events


def job_events_follow(*, job_id: Any, after: int = 0, poll_ms: int = 1000) -> Iterator[Event]:
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
        if not job.is_finished:
            continue
        # The job ended; its `done` may have been written just now, or the log may be gone.
        late = streams.read_events(job_id, after)
        if late:
            yield from late
            if late[-1].type == "done":
                return
            after = late[-1].seq
        if after == 0:
            yield from job_replay_events(job)
        else:
            replay = job_replay_events(job)
            yield Event(after + 1, "done", job.attempt, replay[-1].data)
        return
