"""A running attempt's lease: the process's cancel watch tells it of a cancel; it never asks Redis itself."""

import threading

import pytest

from inference import streams
from inference.cancel_watch import CANCEL_POLL_SECONDS, CancelWatch
from inference.lease import Lease
from inference.services.jobs import job_start, job_submit

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
