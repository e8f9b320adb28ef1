"""Filters for job timings and JSON, shown the way people read them."""

from __future__ import annotations

import json
from datetime import datetime

from django import template

register = template.Library()


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


@register.filter
def queue_wait(job) -> str:
    return _span(job.created_at, job.started_at)


@register.filter
def first_token(job) -> str:
    return _span(job.created_at, job.first_token_at)  # what the user waited, queue included


@register.filter
def duration(job) -> str:
    return _span(job.started_at, job.finished_at)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
