"""A worker's log keeps each job's lines, without two lines every few seconds for beat's tasks."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_build
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

QUEUE = "quiet-logs"


def test_beats_tasks_leave_only_what_they_did_in_the_workers_log(start_worker, owner):
    # This worker's reaper resends a job queued for over a second; the shared workers' wait 600 s.
    worker = start_worker(QUEUE, env={"JOB_REENQUEUE_AFTER_SECONDS": "1"})
    AIModel.objects.create(slug="quiet", display_name="Quiet", task="chat", backend="echo", queue=QUEUE)
    job = job_build(user=owner, model="quiet", input={"messages": [{"role": "user", "content": "still here"}]})
    job.enqueued_at = timezone.now() - timedelta(seconds=5)
    job.save(force_insert=True)  # stored, its message lost: only the reaper sends it again

    app.send_task("inference.tasks.reap_jobs", queue=QUEUE)

    wait_for(lambda: Job.objects.get(id=job.id).status == JobStatus.SUCCEEDED, timeout=30, what="the resent job")
    # Celery logs a task's success after it returns, a moment after the job's row says so.
    job_succeeded = re.compile(r"Task inference\.tasks\.run_job\[[0-9a-f-]+\] succeeded in")
    wait_for(lambda: job_succeeded.search(worker.log()), timeout=10, what="the job's own lines in the log")
    log = worker.log()
    assert "reaper: ReapReport(requeued=0, failed=0, canceled=0, expired=0, reenqueued=1)" in log
    assert "reap_jobs[" not in log
