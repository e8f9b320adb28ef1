"""Shapes of jobs on the wire."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from inference.models import Job


class JobCreateInput(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    input = serializers.JSONField()

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            name = sorted(unknown)[0]
            raise serializers.ValidationError({name: serializers.ErrorDetail("Unknown field.", code="unknown_field")})
        return attrs


def _ms(start, end) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000)


def job_representation(job: Job, request=None) -> dict[str, Any]:
    def url(name: str) -> str:
        path = reverse(name, kwargs={"job_id": job.id})
        return request.build_absolute_uri(path) if request is not None else path

    ws_path = f"/ws/jobs/{job.id}/"
    if request is not None:
        scheme = "wss" if request.is_secure() else "ws"
        ws_path = f"{scheme}://{request.get_host()}{ws_path}"
    return {
        "id": str(job.id),
        "object": "job",
        "model": job.model.slug,
        "task": job.task,
        "client": job.client,
        "status": job.status,
        "attempt": job.attempt,
        "input": job.input,
        "output": {"text": job.output_text, "data": job.output_json} if job.is_finished else None,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
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
        "urls": {
            "self": url("api:job-detail"),
            "events": url("api:job-events"),
            "websocket": ws_path,
            "cancel": url("api:job-cancel"),
        },
    }
