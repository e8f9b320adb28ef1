"""A running attempt's lease: the process's cancel watch tells it of a cancel, the process's lease keeper
renews it with the others; it never asks Redis or the database itself."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from inference import streams
from inference.cancel_watch import CANCEL_POLL_SECONDS, CancelWatch
from inference.lease import Lease, LeaseKeeper
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_cancel, job_start, job_submit

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}
# Long enough for a poll or two on a busy machine: a cancel must land well within it.
WAIT_SECONDS = 40 * CANCEL_POLL_SECONDS


@pytest.fixture
def running_jobs(owner, echo_model):
    def make(count: int):
        jobs = [job_submit(user=owner, model="echo", input=CHAT) for _ in range(count)]
        for job in jobs:
            job_start(job_id=job.id, attempt=1, worker="w1")
        return jobs

    return make


def test_should_stop_turns_true_when_the_job_is_canceled_while_it_runs(running_jobs):
    (job,) = running_jobs(1)
    with Lease(job.id, 1) as lease:
        assert not lease.should_stop()
        streams.request_cancel(job.id)

        assert lease.canceled.wait(WAIT_SECONDS)
        assert lease.should_stop()


def test_one_poll_tells_each_watched_job_of_its_own_cancel_only(running_jobs):
    canceled_job, running_job = running_jobs(2)
    watch = CancelWatch()
    canceled, running = threading.Event(), threading.Event()
    watch.watch(canceled_job.id, canceled)
    watch.watch(running_job.id, running)

    streams.request_cancel(canceled_job.id)

    assert canceled.wait(WAIT_SECONDS)
    assert not running.wait(4 * CANCEL_POLL_SECONDS)  # polled again meanwhile, still not canceled


def test_a_job_no_longer_watched_is_not_told(running_jobs):
    (job,) = running_jobs(1)
    watch = CancelWatch()
    canceled = threading.Event()
    watch.watch(job.id, canceled)
    watch.unwatch(job.id, canceled)

    streams.request_cancel(job.id)

    assert not canceled.wait(4 * CANCEL_POLL_SECONDS)


def test_a_lease_that_ended_stops_being_watched(running_jobs):
    (job,) = running_jobs(1)
    with Lease(job.id, 1) as lease:
        pass

    streams.request_cancel(job.id)

    assert not lease.canceled.wait(4 * CANCEL_POLL_SECONDS)


def test_a_cancel_reported_by_an_append_stops_the_job_at_once(running_jobs):
    (job,) = running_jobs(1)
    lease = Lease(job.id, 1)

    lease.cancel_reported(False)
    assert not lease.should_stop()
    lease.cancel_reported(True)
    assert lease.should_stop()


# The keeper renews from its own thread, on its own connection: these tests commit what it reads.
keeper_test = pytest.mark.django_db(transaction=True)
BEAT_SECONDS = 0.1


class ReleasingKeeper:
    """A lease keeper of the test's own that releases, at the end, every lease it was given."""

    def __init__(self) -> None:
        self.keeper = LeaseKeeper()
        self.given: list[Lease] = []

    def hold(self, lease: Lease) -> Lease:
        self.given.append(lease)
        self.keeper.hold(lease)
        return lease

    def release(self, lease: Lease) -> None:
        self.keeper.release(lease)


@pytest.fixture
def keeper(settings, echo_model):
    """Beating fast, for jobs no worker runs (the session's worker serves `default`)."""
    settings.JOB_HEARTBEAT_SECONDS = BEAT_SECONDS
    AIModel.objects.filter(id=echo_model.id).update(queue="nobody")
    keeper = ReleasingKeeper()
    yield keeper
    for lease in keeper.given:  # its thread falls idle: nothing of a finished test's is renewed
        keeper.release(lease)


def _go_stale(job) -> None:
    """Older than a beat, younger than a lease: the session's reaper (tests run short leases) leaves it alone."""
    age = timedelta(seconds=settings.JOB_LEASE_SECONDS / 2)
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - age)


def _fresh(job) -> bool:
    job.refresh_from_db()
    return timezone.now() - job.heartbeat_at < timedelta(seconds=settings.JOB_LEASE_SECONDS / 4)


def _eventually(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(BEAT_SECONDS / 2)
    return True


@keeper_test
def test_the_keeper_renews_every_lease_it_holds_and_none_it_released(keeper, running_jobs):
    first, second, released = running_jobs(3)
    _go_stale(first)
    _go_stale(second)
    leases = [keeper.hold(Lease(job.id, 1)) for job in (first, second, released)]
    keeper.release(leases[2])

    assert _eventually(lambda: _fresh(first) and _fresh(second))
    _go_stale(released)  # after a beat: one that began before the release has committed by now
    time.sleep(3 * BEAT_SECONDS)  # a few more beats
    assert not _fresh(released)
    assert not any(lease.should_stop() for lease in leases)


@keeper_test
def test_a_lease_whose_job_moved_to_a_new_attempt_is_told_it_is_lost_once(keeper, running_jobs, caplog):
    (job,) = running_jobs(1)
    Job.objects.filter(id=job.id).update(status=JobStatus.QUEUED, attempt=2)  # as the reaper does

    lease = keeper.hold(Lease(job.id, 1))

    assert lease.lost.wait(5)
    assert not lease.canceled.is_set()
    time.sleep(3 * BEAT_SECONDS)  # a lost lease is no longer renewed, nor reported again
    assert [record.getMessage() for record in caplog.records] == [f"job {job.id} attempt 1 lost its lease"]


@keeper_test
def test_a_cancel_request_stored_in_the_database_reaches_the_lease_with_its_renewal(keeper, running_jobs):
    (job,) = running_jobs(1)
    lease = keeper.hold(Lease(job.id, 1))  # not the process's cancel watch: Redis is not asked here

    job_cancel(job=job)

    assert lease.canceled.wait(5)
    assert not lease.lost.is_set()
