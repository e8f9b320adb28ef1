"""Reads of inference data. Every read of a user's job goes through here.

A job that exists but belongs to someone else raises the same NotFound as a
job that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.models import User
from inference.errors import ModelDisabled, ModelNotFound, NotFound
from inference.models import TERMINAL_STATUSES, AIModel, Job
from inference.precompiled import PrecompiledLookup


def ai_models_enabled() -> QuerySet[AIModel]:
    return AIModel.objects.filter(enabled=True)


_ai_model_by_slug = PrecompiledLookup(lambda slug: AIModel.objects.filter(slug=slug))  # on every job request


def ai_model_get_runnable(*, slug: str) -> AIModel:
    """The enabled model named `slug`, or a clear error."""
    model = _ai_model_by_slug(slug)
    if model is None:
        raise ModelNotFound(f"There is no model named {slug!r}.", param="model")
    if not model.enabled:
        raise ModelDisabled(f"The model {slug!r} is disabled by an operator.", param="model")
    return model


def jobs_for_user(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(owner=user).select_related("model")


# Every read of one job (the API, each websocket and SSE stream) finds it by id; the nil UUID names no job.
_job_by_id = PrecompiledLookup(
    lambda job_id: Job.objects.select_related("model").filter(id=job_id), placeholder=uuid.UUID(int=0)
)


def job_get_for_user(*, user: User, job_id: str | uuid.UUID) -> Job:
    """The user's job, or NotFound whether it is missing or someone else's."""
    try:
        job_uuid = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound("No such job.", code="job_not_found") from None
    job = _job_by_id(job_uuid)
    if job is None or job.owner_id != user.pk:
        raise NotFound("No such job.", code="job_not_found")
    return job


# Every job a worker starts is loaded with its model and webhook (inference.services.jobs runs this
# lookup in one statement with the claim); the nil UUID names no job.
job_to_run_lookup = PrecompiledLookup(
    lambda job_id: Job.objects.select_related("model", "webhook").filter(id=job_id), placeholder=uuid.UUID(int=0)
)


def job_get_to_run(*, job_id: str | uuid.UUID) -> Job | None:
    """A job with its model and its webhook if it has one (a LEFT JOIN: most have none)."""
    return job_to_run_lookup(job_id)


def jobs_finished_among(*, job_ids: list[str]) -> set[str]:
    """Which of these jobs have finished (as strings)."""
    finished = Job.objects.filter(id__in=job_ids, status__in=TERMINAL_STATUSES).values_list("id", flat=True)
    return {str(job_id) for job_id in finished}
