"""Shapes of the API on the wire: small input serializers, and the output shapes they document."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.urls import get_script_prefix, reverse
from rest_framework import serializers

from inference.job_errors import job_error_message
from inference.models import Job, JobClient, JobStatus, Task
from webhooks.models import WebhookEvent


def json_kind(value: Any) -> str:
    """What JSON calls the type of `value`, for a person: "an array", not Python's "list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def validated(serializer: serializers.Serializer) -> dict[str, Any]:
    """The serializer's validated data, or its ValidationError raised (a 400 with every field's error).

    DRF binds a serializer and its fields to each other (its `fields` hold them, each field's
    `parent` holds it; a list or dict field and its `child` likewise), so a serializer used once
    was left for the cyclic garbage collector: 32 objects per submitted job, freed in full
    collections that pause every stream daphne serves. Once valid its data stands alone, and
    the serializer is unlinked to go at once. An invalid one is left as is: its errors name it.
    """
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    _unbind(serializer)
    return data


def _unbind(field: serializers.Field) -> None:
    attributes = vars(field)
    bound = list(attributes.get("fields", {}).values())  # a serializer's, once it has built them
    if isinstance(attributes.get("child"), serializers.Field):
        bound.append(attributes["child"])
    for child in bound:
        _unbind(child)
    attributes.clear()


class StrictSerializer(serializers.Serializer):
    """Refuses what is not a JSON object, and fields it does not know (400 `unknown_field`), at every level."""

    def run_validation(self, data=serializers.empty):
        if data is None and self.parent is None:  # DRF says "No data provided"
            self._refuse_kind(data)
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, dict):  # DRF says "Invalid data. Expected a dictionary, but got list."
            self._refuse_kind(data)
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            detail = serializers.ErrorDetail("Unknown field.", code="unknown_field")
            raise serializers.ValidationError({unknown[0]: [detail]})
        return super().to_internal_value(data)

    def _refuse_kind(self, data: Any):
        what = "The body must be" if self.parent is None else "Give"
        detail = serializers.ErrorDetail(f"{what} a JSON object, not {json_kind(data)}.", code="invalid")
        raise serializers.ValidationError({"non_field_errors": [detail]})


class JsonObjectField(serializers.DictField):
    """A JSON object of anything."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):  # DRF says 'Expected a dictionary of items but got type "str".'
            raise serializers.ValidationError(f"Give a JSON object, not {json_kind(data)}.", code="not_a_dict")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string, and only a string: 5 is not "5"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)  # so max_length counts what was sent
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean, and only that: "true" and 1 are not true."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def query_data(request, *, repeatable: tuple[str, ...] = ()) -> dict[str, Any]:
    """Query parameters for a serializer: a repeated parameter stays a list, so a field that takes
    one value refuses it instead of silently keeping the last; `repeatable` ones may also be comma-separated.
    """
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if key in repeatable:
            data[key] = [part for value in values for part in value.split(",")]
        else:
            data[key] = values[0] if len(values) == 1 else values
    return data


# ------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------


class ErrorDetailOutput(serializers.Serializer):
    type = serializers.CharField(help_text="A broad class: invalid_request_error, rate_limit_error, ...")
    code = serializers.CharField(help_text="A stable code to branch on, e.g. `invalid_cursor`.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    param = serializers.CharField(allow_null=True, help_text="The field or header at fault, if one is.")


class ErrorOutput(serializers.Serializer):
    error = ErrorDetailOutput()


# ------------------------------------------------------------------------------
# Jobs
# ------------------------------------------------------------------------------


class WebhookInput(StrictSerializer):
    url = serializers.URLField(
        max_length=2000, trim_whitespace=False, help_text="Called with a signed POST (Standard Webhooks)."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        min_length=1,
        max_length=3,
        default=[WebhookEvent.COMPLETED],
        help_text="Which events to send: start, output, completed.",
    )


class JobCreateInput(StrictSerializer):
    model = StrictCharField(max_length=100, help_text="A model's slug (see GET /api/v1/models).")
    input = JsonObjectField(help_text="The task's input; its JSON Schema is on GET /api/v1/models/{slug}.")
    webhook = WebhookInput(required=False)
    stream = StrictBooleanField(
        required=False,
        default=False,
        help_text="Answer with the job's events as Server-Sent Events, as GET /api/v1/jobs/{id}/events sends them, "
        "instead of the job: one request from submit to the last token.",
    )


_STATUSES = ", ".join(JobStatus.values)
_LIMIT = "Give a whole number from 1 to 100."
_MOMENT = "Give a date and time in ISO 8601, such as 2026-01-31T09:30:00Z."


class JobListFilters(serializers.Serializer):
    status = serializers.MultipleChoiceField(
        choices=JobStatus.choices,
        required=False,
        help_text="Only jobs in these statuses (repeat or comma-separate).",
        error_messages={"invalid_choice": f'Give one or more of {_STATUSES}; not "{{input}}".'},
    )
    model = serializers.SlugField(required=False, help_text="Only jobs of this model.")
    created_after = serializers.DateTimeField(
        required=False, help_text="Only jobs created at or after this time.", error_messages={"invalid": _MOMENT}
    )
    created_before = serializers.DateTimeField(
        required=False, help_text="Only jobs created before this time.", error_messages={"invalid": _MOMENT}
    )
    q = serializers.CharField(
        required=False, max_length=200, trim_whitespace=False, help_text="Text to find in the job's input."
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        default=20,
        error_messages={"invalid": _LIMIT, "min_value": _LIMIT, "max_value": _LIMIT, "max_string_length": _LIMIT},
    )
    cursor = serializers.CharField(
        required=False, max_length=1000, trim_whitespace=False, help_text="`next_cursor` of the previous page."
    )


class JobOutputText(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    data = serializers.JSONField(allow_null=True, help_text="Structured output: embeddings or classifications.")
    finish_reason = serializers.ChoiceField(
        choices=["stop", "length"],
        allow_null=True,
        help_text="Why a chat or completion that succeeded ended: `length` once it reached its `max_tokens` (the "
        "text is cut short there), `stop` when the model ended it. Null for other jobs.",
    )


class JobErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(allow_blank=True)


class UsageOutput(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class JobTimingsOutput(serializers.Serializer):
    queue_wait_ms = serializers.IntegerField(allow_null=True)
    time_to_first_token_ms = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class JobUrlsOutput(serializers.Serializer):
    self = serializers.CharField()
    events = serializers.CharField(help_text="Server-Sent Events; resume with ?after=N or Last-Event-ID.")
    websocket = serializers.CharField()
    cancel = serializers.CharField()


class JobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    object = serializers.ChoiceField(choices=["job"])
    model = serializers.CharField()
    task = serializers.ChoiceField(choices=Task.choices)
    client = serializers.ChoiceField(choices=JobClient.choices)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    attempt = serializers.IntegerField()
    input = serializers.DictField()
    output = JobOutputText(allow_null=True, help_text="Set once the job finished.")
    error = JobErrorOutput(allow_null=True)
    usage = UsageOutput()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    first_token_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    timings = JobTimingsOutput()
    urls = JobUrlsOutput()


class JobListOutput(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = JobOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


def _ms(start, end) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000)


# A job id no job has, standing in for the id in the paths reverse() gives once per script prefix.
_ANY_JOB_ID = "00000000-0000-0000-0000-000000000000"
JOB_URL_NAMES = {"self": "api:job-detail", "events": "api:job-events", "cancel": "api:job-cancel"}


@lru_cache(maxsize=16)
def _job_path_templates(script_prefix: str) -> dict[str, str]:
    """The job URLs' paths around a stand-in id (reverse() took 25 µs a URL, three for every job
    shown); `script_prefix` is part of the key because reverse() puts it in the paths."""
    return {key: reverse(name, kwargs={"job_id": _ANY_JOB_ID}) for key, name in JOB_URL_NAMES.items()}


def job_urls(job_id, request=None) -> dict[str, str]:
    """Where to read, follow and cancel a job: absolute URLs under `request`, else paths."""
    job_id = str(job_id)
    paths = {key: path.replace(_ANY_JOB_ID, job_id) for key, path in _job_path_templates(get_script_prefix()).items()}
    websocket = f"/ws/jobs/{job_id}/"
    if request is None:
        return {**paths, "websocket": websocket}
    origin = request.build_absolute_uri("/")[:-1]  # scheme://host, as Django builds it for any path
    scheme, host = origin.split("://", 1)
    urls = {key: origin + path for key, path in paths.items()}
    return {**urls, "websocket": f"{'wss' if scheme == 'https' else 'ws'}://{host}{websocket}"}


def _error(job: Job, request) -> dict[str, str]:
    """As the caller may read it; without a request (a webhook's payload), what anyone may."""
    user = getattr(request, "user", None)
    return {
        "code": job.error_code,
        "message": job_error_message(code=job.error_code, message=job.error_message, user=user),
    }


def job_representation(job: Job, request=None) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "object": "job",
        "model": job.model.slug,
        "task": job.task,
        "client": job.client,
        "status": job.status,
        "attempt": job.attempt,
        "input": job.input,
        "output": (
            {"text": job.output_text, "data": job.output_json, "finish_reason": job.finish_reason}
            if job.is_finished
            else None
        ),
        "error": _error(job, request) if job.error_code else None,
        "usage": {
            "prompt_tokens": job.prompt_tokens,
            "completion_tokens": job.completion_tokens,
            "total_tokens": job.total_tokens,
        },
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "first_token_at": job.first_token_at.isoformat() if job.first_token_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "timings": {
            "queue_wait_ms": _ms(job.created_at, job.started_at),
            "time_to_first_token_ms": _ms(job.started_at, job.first_token_at),
            "duration_ms": _ms(job.started_at, job.finished_at),
        },
        "urls": job_urls(job.id, request),
    }
