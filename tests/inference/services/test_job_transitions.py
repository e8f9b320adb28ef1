"""Every status transition, and the races between them.

Each race is played out for real: the losing call runs after the winner has
committed, against the row as it now is, so removing a compare-and-set from
the services makes these tests fail.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from inference import streams
from inference.models import Job, JobStatus
from inference.services.jobs import (
    Usage,
    job_cancel,
    job_finish,
    job_heartbeat,
    job_start,
    job_submit,
    jobs_reap,
)

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture
def job(owner, echo_model):
    return job_submit(user=owner, model="echo", input=CHAT)


def _status(job) -> str:
    job.refresh_from_db()
    return job.status


def _go_stale(job) -> None:
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))


def test_a_queued_job_starts_once(job):
    assert job_start(job_id=job.id, attempt=1, worker="w1") is not None
    assert job_start(job_id=job.id, attempt=1, worker="w2") is None

    job.refresh_from_db()
    assert (job.status, job.worker) == (JobStatus.RUNNING, "w1")
    assert job.started_at is not None
    assert job.heartbeat_at is not None


def test_a_message_for_another_attempt_does_not_start_the_job(job):
    assert job_start(job_id=job.id, attempt=2, worker="w1") is None
    assert _status(job) == JobStatus.QUEUED


def test_a_running_job_succeeds_once_and_keeps_the_first_result(job):
    job_start(job_id=job.id, attempt=1, worker="w1")

    assert job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 3), output_text="first")
    assert not job_finish(job_id=job.id, attempt=1, status=JobStatus.FAILED, usage=Usage(), error_code="x")

    job.refresh_from_db()
    assert (job.status, job.output_text, job.completion_tokens) == (JobStatus.SUCCEEDED, "first", 3)
    assert job.finished_at is not None


def test_a_running_job_can_fail_with_a_code(job):
    job_start(job_id=job.id, attempt=1, worker="w1")

    job_finish(job_id=job.id, attempt=1, status=JobStatus.FAILED, usage=Usage(), error_code="boom", error_message="m")

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error_message) == (JobStatus.FAILED, "boom", "m")


def test_cancel_before_start_wins_and_the_worker_then_skips_the_job(job):
    job_cancel(job=job)

    assert _status(job) == JobStatus.CANCELED
    assert job_start(job_id=job.id, attempt=1, worker="w1") is None
    assert _status(job) == JobStatus.CANCELED


def test_start_before_cancel_turns_the_cancel_into_a_stop_request(job):
    job_start(job_id=job.id, attempt=1, worker="w1")

    job_cancel(job=job)

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.cancel_requested_at is not None
    assert streams.cancel_requested(job.id)


def test_canceling_a_finished_job_changes_nothing(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="done")

    job_cancel(job=job)

    job.refresh_from_db()
    assert (job.status, job.output_text, job.cancel_requested_at) == (JobStatus.SUCCEEDED, "done", None)


def test_the_reaper_leaves_a_job_with_a_live_heartbeat_alone(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_heartbeat(job_id=job.id, attempt=1)

    report = jobs_reap()

    assert report.requeued == 0
    assert _status(job) == JobStatus.RUNNING


def test_the_reaper_requeues_a_job_whose_worker_went_silent(job, django_capture_on_commit_callbacks):
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)

    with django_capture_on_commit_callbacks() as callbacks:
        report = jobs_reap()

    job.refresh_from_db()
    assert report.requeued == 1
    assert (job.status, job.attempt, job.worker) == (JobStatus.QUEUED, 2, "")
    assert len(callbacks) == 1


def test_a_heartbeat_that_lands_before_the_reaper_writes_keeps_the_job(job, monkeypatch):
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)
    from inference.services import jobs as jobs_service

    reap_one = jobs_service._reap_running

    def heartbeat_then_reap(stale_job, *args):
        job_heartbeat(job_id=stale_job.id, attempt=stale_job.attempt)  # the worker wakes up just in time
        return reap_one(stale_job, *args)

    monkeypatch.setattr(jobs_service, "_reap_running", heartbeat_then_reap)
    report = jobs_reap()

    job.refresh_from_db()
    assert report.requeued == 0
    assert (job.status, job.attempt) == (JobStatus.RUNNING, 1)


def test_the_old_attempt_cannot_finish_or_heartbeat_after_it_was_reaped(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)
    jobs_reap()

    assert not job_heartbeat(job_id=job.id, attempt=1)
    assert not job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="late")
    assert job_start(job_id=job.id, attempt=2, worker="w2") is not None
    assert job_finish(job_id=job.id, attempt=2, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="fresh")

    job.refresh_from_db()
    assert (job.status, job.attempt, job.output_text) == (JobStatus.SUCCEEDED, 2, "fresh")


def test_the_reaper_fails_a_job_after_its_last_attempt(job):
    Job.objects.filter(id=job.id).update(max_attempts=1)
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)

    report = jobs_reap()

    job.refresh_from_db()
    assert report.failed == 1
    assert (job.status, job.error_code) == (JobStatus.FAILED, "worker_lost")


def test_the_reaper_settles_a_canceled_job_whose_worker_died(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_cancel(job=job)
    _go_stale(job)

    report = jobs_reap()

    assert report.canceled == 1
    assert _status(job) == JobStatus.CANCELED


def test_a_queued_job_past_its_deadline_expires(job):
    Job.objects.filter(id=job.id).update(deadline_at=timezone.now() - timedelta(seconds=1))

    report = jobs_reap()

    job.refresh_from_db()
    assert report.expired == 1
    assert (job.status, job.error_code) == (JobStatus.EXPIRED, "deadline_exceeded")


def test_a_late_message_does_not_start_an_expired_job(job):
    Job.objects.filter(id=job.id).update(deadline_at=timezone.now() - timedelta(seconds=1))

    assert job_start(job_id=job.id, attempt=1, worker="w1") is None
    assert _status(job) == JobStatus.EXPIRED


def test_the_reaper_resends_a_message_that_waited_too_long(job, django_capture_on_commit_callbacks):
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(id=job.id).update(enqueued_at=long_ago, deadline_at=timezone.now() + timedelta(hours=1))

    with django_capture_on_commit_callbacks() as callbacks:
        report = jobs_reap()

    assert report.reenqueued == 1
    assert len(callbacks) == 1
    assert _status(job) == JobStatus.QUEUED
