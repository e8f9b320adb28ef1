"""Disabling a user: the operator's one switch that stops everything they run."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.signals import access_revoked


@dataclass(frozen=True)
class UserDisabled:
    keys_revoked: int
    jobs_canceled: int


def user_disable(*, user: User) -> UserDisabled:
    """Deactivate `user`, revoke every active key and cancel their queued and running jobs."""
    from inference.models import Job, JobStatus  # inference depends on accounts, not the other way
    from inference.services.jobs import job_cancel

    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    user_id = user.pk
    transaction.on_commit(lambda: access_revoked.send(sender=User, user_id=user_id, key_prefix=None), robust=True)
    keys_revoked = ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    jobs = Job.objects.filter(owner=user, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    canceled = 0
    for job in jobs:
        job_cancel(job=job)
        canceled += 1
    return UserDisabled(keys_revoked=keys_revoked, jobs_canceled=canceled)
