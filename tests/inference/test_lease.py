"""A running attempt's lease: when it asks Redis whether the job was canceled."""

import time

import pytest

from inference import streams
from inference.lease import CANCEL_POLL_SECONDS, Lease
from inference.services.jobs import job_start, job_submit

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture
def canceled_running_job(owner, echo_model):
    """A running job whose cancel request is in Redis (as job_cancel leaves it for its worker)."""
    job = job_submit(user=owner, model="echo", input=CHAT)
    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.request_cancel(job.id)
    return job


def test_a_lease_with_no_check_behind_it_polls_at_once(canceled_running_job):
    lease = Lease(canceled_running_job.id, 1)

    assert lease.should_stop()
    assert lease.canceled.is_set()


def test_a_claim_just_made_spares_the_poll_before_the_first_token(canceled_running_job):
    lease = Lease(canceled_running_job.id, 1, cancel_checked_at=time.monotonic())

    assert not lease.should_stop()  # the claim found no cancel request a moment ago
    time.sleep(CANCEL_POLL_SECONDS)
    assert lease.should_stop()
