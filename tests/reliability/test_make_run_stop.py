"""`make run` stopped with Ctrl-C while a job runs: the job finishes, or with a second Ctrl-C runs again later.

The real scripts/run.py, on the test database and Redis, with its worker on a queue of its own.
"""

import os
import signal
import subprocess
import sys

import pytest

from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from tests.reliability.paced_jobs import slow_echo_model, wait_finished, wait_streaming
from tests.support.processes import ROOT, free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "make-run"


def _slow_model(tokens: int) -> None:
    # On a queue only the worker of `make run` serves, so no other worker of the session takes its jobs.
    slow_echo_model(queue=QUEUE, tokens=tokens, tokens_per_second=40, max_output_tokens=5000)


@pytest.fixture
def make_run(worker_env, django_user_model, tmp_path):
    """scripts/run.py started as `make run` starts it; yields the process and its output's path."""
    # With an operator already there, it writes no credentials over those of the developer's own `.run`.
    django_user_model.objects.create_superuser(username="operator", email="op@example.com", password="pw-op-1")
    output = tmp_path / "make-run.log"
    env = {**worker_env, "DJINN_PORT": str(free_port()), "WORKER_QUEUES": QUEUE, "WORKER_CONCURRENCY": "1"}
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, output
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _submit_and_wait_streaming(owner) -> Job:
    job = job_submit(user=owner, model="slow-echo", input={"messages": [{"role": "user", "content": "one two three"}]})
    wait_streaming(job, timeout=90, what="the job to stream on the worker of make run")
    return job


def test_ctrl_c_lets_the_running_job_finish_and_logs_no_lost_worker(make_run, owner):
    process, output = make_run
    _slow_model(tokens=400)  # 10 s
    job = _submit_and_wait_streaming(owner)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt == 1
    assert job.completion_tokens == 400
    said = output.read_text(errors="replace")
    assert "the worker is finishing its running jobs (up to 30 s); Ctrl-C again stops them now" in said
    assert "WorkerLostError" not in said
    assert "Traceback" not in said
    assert said.rstrip().endswith("djinn | stopped.")


def test_a_second_ctrl_c_stops_the_job_now_and_it_runs_again_later(make_run, celery_worker, start_worker, owner):
    process, output = make_run
    _slow_model(tokens=600)  # 15 s
    job = _submit_and_wait_streaming(owner)

    process.send_signal(signal.SIGINT)
    wait_for(lambda: "Ctrl-C again stops them now" in output.read_text(), what="make run to offer to stop the job")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    said = output.read_text(errors="replace")
    assert "Traceback" not in said
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # stopped where it was, not finished and not failed

    # The reaper (the session worker's beat) gives it to the next worker of its queue.
    rescuer = start_worker(QUEUE)

    wait_finished(job, timeout=180)
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt == 2
    assert job.worker == rescuer.name
