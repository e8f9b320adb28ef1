"""Filters for job timings and JSON, shown the way people read them."""

from __future__ import annotations

import json

from django import template
from django.utils.html import format_html

from web import timings
from web.job_errors import OPERATOR_ONLY_ERROR_CODES, UNAVAILABLE_MESSAGE, job_error_message

register = template.Library()

register.filter("queue_wait", timings.queue_wait)
register.filter("first_token", timings.first_token)
register.filter("duration", timings.duration)


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
