"""Every status transition, and the races between them.

Each race is played out for real: the losing call runs after the winner has
committed, against the row as it now is, so removing a compare-and-set from
the services makes these tests fail.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inference import streams
from inference.models import Job, JobStatus
from inference.services.jobs import (
    Usage,
    estimate_tokens,
    job_cancel,
    job_finish,
    job_mark_first_token,
    job_start,
    job_submit,
    jobs_heartbeat,
    jobs_reap,
)
from inference.services.operator import job_requeue

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


def _pass_the_queue_deadline(job) -> None:
    Job.objects.filter(id=job.id).update(deadline_at=timezone.now() - timedelta(seconds=1))


def _log(job) -> list:
    return streams.read_events(job.id)


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


def test_a_heartbeat_renews_the_leases_and_reads_back_their_cancel_requests(owner, echo_model):
    jobs = [job_submit(user=owner, model="echo", input=CHAT) for _ in range(3)]
    for job in jobs:
        job_start(job_id=job.id, attempt=1, worker="w1")
        _go_stale(job)
    job_cancel(job=jobs[1])

    renewed = jobs_heartbeat(attempts=[(job.id, 1) for job in jobs])

    assert renewed == {(str(jobs[0].id), 1): False, (str(jobs[1].id), 1): True, (str(jobs[2].id), 1): False}
    for job in jobs:
        job.refresh_from_db()
        assert timezone.now() - job.heartbeat_at < timedelta(seconds=5)


def test_a_heartbeat_costs_the_same_statements_for_one_job_or_many(owner, echo_model, django_assert_num_queries):
    jobs = [job_submit(user=owner, model="echo", input=CHAT) for _ in range(5)]
    for job in jobs:
        job_start(job_id=job.id, attempt=1, worker="w1")

    with django_assert_num_queries(4):  # savepoint, locked read, update, release
        jobs_heartbeat(attempts=[(jobs[0].id, 1)])
    with django_assert_num_queries(4):
        jobs_heartbeat(attempts=[(job.id, 1) for job in jobs])


def _job_table_updates() -> tuple[int, int]:
    """This transaction's updates of job rows so far: all of them, and those that wrote no index entry."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [Job._meta.db_table] * 2,
        )
        return cursor.fetchone()


def test_a_heartbeat_writes_no_index_entry(owner, echo_model):
    """A heartbeat touches no indexed column, so PostgreSQL writes the row's new version beside the
    old one and no index changes (a HOT update). With heartbeat_at in an index, none of them was."""
    jobs = [job_submit(user=owner, model="echo", input=CHAT) for _ in range(3)]
    for job in jobs:
        job_start(job_id=job.id, attempt=1, worker="w1")
    updated, hot = _job_table_updates()

    for _ in range(3):
        jobs_heartbeat(attempts=[(job.id, 1) for job in jobs])

    updated_after, hot_after = _job_table_updates()
    assert (updated_after - updated, hot_after - hot) == (9, 9)


def test_the_job_table_leaves_room_in_each_page_for_updates_in_place(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Job._meta.db_table])
        assert cursor.fetchone()[0] == ["fillfactor=90"]


def test_the_reaper_leaves_a_job_with_a_live_heartbeat_alone(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    jobs_heartbeat(attempts=[(job.id, 1)])

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
        jobs_heartbeat(attempts=[(stale_job.id, stale_job.attempt)])  # the worker wakes up just in time
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

    assert not jobs_heartbeat(attempts=[(job.id, 1)])
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


def test_an_old_attempt_cannot_finish_or_heartbeat_while_the_new_one_runs(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)
    jobs_reap()
    job_start(job_id=job.id, attempt=2, worker="w2")

    assert not jobs_heartbeat(attempts=[(job.id, 1)])
    assert not job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="late")

    job.refresh_from_db()
    assert (job.status, job.attempt, job.worker, job.output_text) == (JobStatus.RUNNING, 2, "w2", "")
    assert jobs_heartbeat(attempts=[(job.id, 2)])


def test_a_job_retried_after_its_queue_deadline_runs_its_retry(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    _pass_the_queue_deadline(job)  # it ran longer than a job may wait in the queue
    _go_stale(job)

    report = jobs_reap()

    job.refresh_from_db()
    assert (report.requeued, report.expired) == (1, 0)
    assert (job.status, job.attempt) == (JobStatus.QUEUED, 2)
    assert job_start(job_id=job.id, attempt=2, worker="w2") is not None


@pytest.mark.django_db(transaction=True)  # its `queued` is announced on commit: the log the error goes into
def test_an_expired_job_tells_watchers_why(job):
    assert [event.type for event in _log(job)] == ["status"]
    _pass_the_queue_deadline(job)

    jobs_reap()

    error = next(event for event in _log(job) if event.type == "error")
    assert error.data == {"code": "deadline_exceeded", "message": "No worker started this job before its deadline."}


def test_a_cancel_settled_by_the_reaper_keeps_the_text_of_every_attempt(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_mark_first_token(job_id=job.id, attempt=1, prompt_tokens=3, log_seq_reserved=1000)
    streams.append_event(job.id, 1, "delta", {"text": "one two "})
    _go_stale(job)
    jobs_reap()
    job_start(job_id=job.id, attempt=2, worker="w2")
    # The retry regenerates "one two " silently and sends only what is new.
    streams.append_event(job.id, 2, "delta", {"text": "three "})
    job_cancel(job=job)
    _go_stale(job)

    report = jobs_reap()

    job.refresh_from_db()
    assert report.canceled == 1
    assert (job.status, job.output_text) == (JobStatus.CANCELED, "one two three ")
    assert (job.prompt_tokens, job.completion_tokens) == (3, estimate_tokens("one two three "))
    done = _log(job)[-1]
    assert done.type == "done"
    assert done.data["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": job.completion_tokens,
        "total_tokens": 3 + job.completion_tokens,
    }


def test_a_cancel_settled_by_the_reaper_keeps_only_the_text_after_a_restart(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.append_event(job.id, 1, "delta", {"text": "one two "})
    _go_stale(job)
    jobs_reap()
    job_start(job_id=job.id, attempt=2, worker="w2")
    streams.append_event(job.id, 2, "status", {"status": "running", "attempt": 2, "restart": True})
    streams.append_event(job.id, 2, "delta", {"text": "uno "})
    job_cancel(job=job)
    _go_stale(job)

    jobs_reap()

    job.refresh_from_db()
    assert (job.status, job.output_text) == (JobStatus.CANCELED, "uno ")


def test_canceling_a_requeued_retry_keeps_the_text_watchers_saw(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.append_event(job.id, 1, "delta", {"text": "one two "})
    _go_stale(job)
    jobs_reap()

    job_cancel(job=job)

    job.refresh_from_db()
    assert (job.status, job.attempt, job.output_text) == (JobStatus.CANCELED, 2, "one two ")


def test_a_cancel_landing_while_the_reaper_requeues_cancels_the_job(job, monkeypatch):
    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.append_event(job.id, 1, "delta", {"text": "one "})
    _go_stale(job)
    from inference.services import jobs as jobs_service

    reap_one = jobs_service._reap_running

    def cancel_then_reap(stale_job, *args):
        job_cancel(job=job)  # lands after the reaper read the job, before it writes
        return reap_one(stale_job, *args)

    monkeypatch.setattr(jobs_service, "_reap_running", cancel_then_reap)
    report = jobs_reap()

    job.refresh_from_db()
    assert (report.requeued, report.canceled) == (0, 1)
    assert (job.status, job.attempt, job.output_text) == (JobStatus.CANCELED, 1, "one ")


def test_a_cancel_landing_while_the_reaper_fails_the_last_attempt_cancels_the_job(job, monkeypatch):
    Job.objects.filter(id=job.id).update(max_attempts=1)
    job_start(job_id=job.id, attempt=1, worker="w1")
    _go_stale(job)
    from inference.services import jobs as jobs_service

    reap_one = jobs_service._reap_running

    def cancel_then_reap(stale_job, *args):
        job_cancel(job=job)
        return reap_one(stale_job, *args)

    monkeypatch.setattr(jobs_service, "_reap_running", cancel_then_reap)
    report = jobs_reap()

    assert (report.failed, report.canceled) == (0, 1)
    assert _status(job) == JobStatus.CANCELED


def test_a_requeued_job_with_a_cancel_request_is_canceled_instead_of_started(job):
    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.append_event(job.id, 1, "delta", {"text": "one "})
    job_cancel(job=job)  # the worker dies before it sees the cancel
    _go_stale(job)
    job_requeue(job=job)  # an operator unsticks it before the reaper settles it

    assert job_start(job_id=job.id, attempt=2, worker="w2") is None

    job.refresh_from_db()
    assert (job.status, job.attempt, job.output_text) == (JobStatus.CANCELED, 2, "one ")
    assert [event.data["status"] for event in _log(job) if event.type == "done"] == [JobStatus.CANCELED]


@pytest.mark.django_db(transaction=True)
def test_a_result_whose_store_committed_but_lost_its_reply_is_counted_as_stored_once(job, monkeypatch):
    """The connection drops after PostgreSQL committed the result: the retry finds it stored, not lost."""
    from django.db import connection

    from inference.services import jobs

    store = jobs._store_result

    def store_then_lose_the_connection(**arguments):
        stored = store(**arguments)
        with connection.cursor() as cursor:  # what a restart does to the connection, right after the commit
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return stored

    job_start(job_id=job.id, attempt=1, worker="w1")
    monkeypatch.setattr(jobs, "_store_result", store_then_lose_the_connection)

    assert job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 3), output_text="done")
    job.refresh_from_db()
    assert (job.status, job.attempt, job.output_text) == (JobStatus.SUCCEEDED, 1, "done")
    assert [e.data["status"] for e in _log(job) if e.type == "done"] == ["succeeded"]
