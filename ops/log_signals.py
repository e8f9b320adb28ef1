"""Connects the log context to the places job ids appear: a stored job, a published task, a running task."""

from __future__ import annotations

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.db.models.signals import post_save

from inference.models import Job
from inference.queueing import RUN_JOB_TASK
from ops.logs import job_id_var, request_id_var

HEADER = "djinn_request_id"


def _job_stored(sender, instance: Job, created: bool, **kwargs) -> None:
    if created:
        job_id_var.set(str(instance.id))


post_save.connect(_job_stored, sender=Job, dispatch_uid="ops.logs.job_stored")


@before_task_publish.connect(dispatch_uid="ops.logs.publish")
def _carry_request_id(sender=None, headers=None, **kwargs) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id:
        headers[HEADER] = request_id


_tokens: dict[str, tuple] = {}


@task_prerun.connect(dispatch_uid="ops.logs.prerun")
def _enter_task(sender=None, task_id=None, task=None, args=None, **kwargs) -> None:
    job_id = str(args[0]) if task is not None and task.name == RUN_JOB_TASK and args else None
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    if request_id is None and task is not None:
        request_id = (getattr(task.request, "headers", None) or {}).get(HEADER)
    _tokens[task_id] = (job_id_var.set(job_id), request_id_var.set(request_id or task_id))


@task_postrun.connect(dispatch_uid="ops.logs.postrun")
def _leave_task(sender=None, task_id=None, **kwargs) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        try:
            job_id_var.reset(tokens[0])
            request_id_var.reset(tokens[1])
        except ValueError:  # ran in another context (a thread pool): nothing of ours to undo here
            job_id_var.set(None)
            request_id_var.set(None)
