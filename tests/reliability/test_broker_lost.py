"""Redis goes away under a worker running a job: the worker outlives it and takes the next job once Redis is back."""

import pytest

from config.celery import app
from inference.models import JobStatus
from inference.queueing import RUN_JOB_TASK
from inference.services.jobs import job_submit
from tests.reliability.paced_jobs import slow_echo_model
from tests.support.processes import free_port, start_redis, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "broker-lost"


def _run_on(broker_url: str, job) -> None:
    """Send the job's task to the worker's own broker (job_submit sent it to the session's)."""
    with app.connection_for_write(broker_url) as connection:
        app.send_task(RUN_JOB_TASK, args=[str(job.id), job.attempt], queue=QUEUE, connection=connection)


def _status(job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_worker_outlives_losing_its_broker_mid_job_and_runs_the_next_job(start_worker, owner, tmp_path):
    # The worker's broker and event log are a Redis of this test's own, which it can stop and start
    # again without touching the Redis every other process of the session uses.
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    redis_server = start_redis(port, tmp_path)
    try:
        slow_echo_model(queue=QUEUE, tokens=400, tokens_per_second=40)
        # As `make run` starts it: with gossip, and a pool of two (with one, Celery 5.7 closed the lost
        # connection in an order that never reached the failure this test is about).
        worker = start_worker(QUEUE, env={"REDIS_URL": broker_url}, as_deployed=True, concurrency=2)
        chat = {"messages": [{"role": "user", "content": "a b c"}]}
        running = job_submit(user=owner, model="slow-echo", input=chat)
        _run_on(broker_url, running)
        wait_for(lambda: _status(running) == JobStatus.RUNNING, timeout=30, what="the first job to start")

        redis_server.terminate()  # what a Redis restart or a lost network is to the worker
        redis_server.wait(timeout=10)
        wait_for(lambda: "Connection to broker lost" in worker.log(), what="the worker to notice")
        redis_server = start_redis(port, tmp_path)

        following = job_submit(user=owner, model="slow-echo", input={**chat, "max_tokens": 5})
        _run_on(broker_url, following)
        wait_for(
            lambda: _status(following) == JobStatus.SUCCEEDED or worker.process.poll() is not None,
            timeout=60,
            what="the next job to run",
        )
        assert worker.process.poll() is None, worker.log()  # it exited: "Unrecoverable error"
        assert following.status == JobStatus.SUCCEEDED
        assert "Unrecoverable error" not in worker.log()
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)
