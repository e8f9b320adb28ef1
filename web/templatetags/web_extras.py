"""Filters for job timings and JSON, shown the way people read them."""

from __future__ import annotations

import json
from datetime import datetime

from django import template
from django.utils.html import format_html

from web.job_errors import OPERATOR_ONLY_ERROR_CODES, UNAVAILABLE_MESSAGE, job_error_message

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


@register.filter
def error_message_for(job, user) -> str:
    """The job's error message as `user` may read it (operator-only details are hidden from non-staff)."""
    return job_error_message(code=job.error_code, message=job.error_message, user=user)


@register.simple_tag
def hidden_error_attributes(user) -> str:
    """For the live chat: which error codes to replace, and with what, for a user who is not staff."""
    if getattr(user, "is_staff", False):
        return ""
    return format_html(
        ' data-hidden-error-codes="{}" data-hidden-error-message="{}"',
        " ".join(sorted(OPERATOR_ONLY_ERROR_CODES)),
        UNAVAILABLE_MESSAGE,
    )
