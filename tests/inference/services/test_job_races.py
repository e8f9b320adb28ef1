"""Races played by real threads on real PostgreSQL connections."""

import threading

import pytest
from django.db import connection

from inference.models import JobStatus
from inference.services.jobs import Usage, job_cancel, job_finish, job_start, job_submit

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"messages": [{"role": "user", "content": "race"}]}


@pytest.fixture
def echo_model(echo_model):
    # On a queue no worker consumes: the only contenders are the threads below.
    echo_model.queue = "unstaffed"
    echo_model.save()
    return echo_model


def _together(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_eight_workers_racing_for_one_job_start_it_once(owner, echo_model):
    for _ in range(5):
        job = job_submit(user=owner, model="echo", input=CHAT)

        results = _together(
            *[lambda i=i, job=job: job_start(job_id=job.id, attempt=1, worker=f"w{i}") for i in range(8)]
        )

        assert sum(result is not None for result in results) == 1


def test_two_finishes_racing_store_one_result(owner, echo_model):
    for _ in range(5):
        job = job_submit(user=owner, model="echo", input=CHAT)
        job_start(job_id=job.id, attempt=1, worker="w")

        results = _together(
            lambda job=job: job_finish(
                job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="a"
            ),
            lambda job=job: job_finish(
                job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(), output_text="b"
            ),
        )

        assert sorted(results) == [False, True]


def test_cancel_racing_start_leaves_a_consistent_job(owner, echo_model):
    for _ in range(10):
        job = job_submit(user=owner, model="echo", input=CHAT)

        started, _ = _together(
            lambda job=job: job_start(job_id=job.id, attempt=1, worker="w"), lambda job=job: job_cancel(job=job)
        )

        job.refresh_from_db()
        if started is None:
            assert job.status == JobStatus.CANCELED
        else:
            assert job.status == JobStatus.RUNNING
            assert job.cancel_requested_at is not None
