"""Reads of a user's web data: another user's conversation looks exactly like a missing one."""

from __future__ import annotations

import logging
import uuid
from datetime import date

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from redis.exceptions import RedisError

from accounts.models import User
from inference import streams
from inference.errors import NotFound
from inference.models import AIModel, Job, Task
from inference.selectors import ai_models_enabled, job_get_for_user, jobs_for_user
from web.models import Conversation

logger = logging.getLogger(__name__)


def job_feed_position(*, user: User) -> str | None:
    """Where the user's feed of job changes stands, read before the page's jobs are: its live badges
    follow from here and miss no change made meanwhile. None when Redis cannot say; they then
    follow from when their socket connects."""
    try:
        return streams.user_feed_position(user.pk)
    except RedisError:
        logger.warning("the job feed's position could not be read", exc_info=True)
        return None


def conversations_for_user(*, user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner=user).select_related("model")


def chat_model_for_new_conversation(*, user: User) -> str | None:
    """The slug of the model a new chat starts with: the one of the user's latest conversation,
    else CHAT_DEFAULT_MODEL, while it is an enabled chat model; None when neither is."""
    enabled = chat_models()
    latest = (
        conversations_for_user(user=user)
        .filter(model__in=enabled)
        .order_by("-updated_at")
        .values_list("model__slug", flat=True)
        .first()
    )
    return latest or enabled.filter(slug=settings.CHAT_DEFAULT_MODEL).values_list("slug", flat=True).first()


def conversation_get_for_user(*, user: User, conversation_id: uuid.UUID | str) -> Conversation:
    conversation = conversations_for_user(user=user).filter(id=conversation_id).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def job_get_for_user_or_404(*, user: User, job_id: uuid.UUID | str) -> Job:
    try:
        return job_get_for_user(user=user, job_id=job_id)
    except NotFound:
        raise Http404("No such job.") from None


def chat_models() -> QuerySet[AIModel]:
    return ai_models_enabled().filter(task__in=[Task.CHAT])


def models_for_task(task: str) -> QuerySet[AIModel]:
    return ai_models_enabled().filter(task=task)


def history_models(*, user: User) -> QuerySet[AIModel]:
    """The models a user can filter their history by: every enabled one, and any other they have jobs with."""
    used = Job.objects.filter(owner=user).values("model_id")
    return AIModel.objects.filter(Q(enabled=True) | Q(id__in=used)).order_by("display_name", "slug")


def jobs_search(
    *,
    user: User,
    query: str = "",
    model: str = "",
    status: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Job]:
    """The user's jobs, newest first, narrowed by words in the input or output, model, status and dates."""
    jobs = jobs_for_user(user=user)
    if query:
        jobs = jobs.filter(Q(input_text__icontains=query) | Q(output_text__icontains=query))
    if model:
        jobs = jobs.filter(model__slug=model)
    if status:
        jobs = jobs.filter(status=status)
    if since:
        jobs = jobs.filter(created_at__date__gte=since)
    if until:
        jobs = jobs.filter(created_at__date__lte=until)
    return jobs
