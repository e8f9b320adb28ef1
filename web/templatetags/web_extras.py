"""Filters for job timings and JSON, shown the way people read them."""

from __future__ import annotations

import json

from django import template

from inference.job_errors import job_error_message
from web import timings

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
