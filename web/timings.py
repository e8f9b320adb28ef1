"""A job's timings, written the way people read them ("250 ms", "2.00 s", "—" while unknown)."""

from __future__ import annotations

from datetime import datetime


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def queue_wait(job) -> str:
    return _span(job.created_at, job.started_at)


def first_token(job) -> str:
    return _span(job.created_at, job.first_token_at)  # what the user waited, queue included


def duration(job) -> str:
    return _span(job.started_at, job.finished_at)


def job_timings(job) -> dict[str, str]:
    """All three, keyed as the job page's `data-timing` cells."""
    return {"queue": queue_wait(job), "ttft": first_token(job), "duration": duration(job)}
