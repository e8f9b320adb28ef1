"""A worker SIGKILLed in the middle of a job: the job is retried, never stuck, never finished twice."""

import os
import signal
import subprocess

import pytest

from inference import streams
from inference.models import Job, JobStatus
from inference.services.events import visible_text
from inference.services.jobs import job_submit
from tests.reliability.paced_jobs import slow_echo_model, wait_finished, wait_streaming
from tests.support.processes import wait_for
from tests.support.watchers import Watch, open_job_socket, watch_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

WORDS = "one two three four five six seven eight"


@pytest.fixture
def slow_model(db):
    return slow_echo_model(queue="crashy", tokens=120, tokens_per_second=60, max_output_tokens=500)


def _submit(owner) -> Job:
    return job_submit(user=owner, model="slow-echo", input={"messages": [{"role": "user", "content": WORDS}]})


def _expected_text() -> str:
    words = WORDS.split()
    return " ".join(words[i % len(words)] for i in range(120))


def test_a_job_whose_worker_is_killed_succeeds_on_a_new_attempt(celery_worker, start_worker, owner, slow_model):
    doomed = start_worker("crashy")
    job = _submit(owner)
    wait_streaming(job)

    doomed.kill()
    rescuer = start_worker("crashy")
    job = wait_finished(job)

    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt == 2
    assert job.worker == rescuer.name
    assert job.output_text == _expected_text()
    events = streams.read_events(job.id)
    restarts = [e for e in events if e.type == "status" and e.data.get("attempt") == 2]
    assert restarts, "watchers must be told that a new attempt started"
    first_attempt_seqs = [e.seq for e in events if e.attempt == 1]
    assert max(first_attempt_seqs) < restarts[0].seq, "the attempts' events must not interleave"
    # The retry regenerates the same text and sends only what watchers had not seen: no seam.
    assert "".join(e.data["text"] for e in events if e.type == "delta") == job.output_text
    assert not any(e.data.get("restart") for e in events)


def test_a_retry_that_answers_differently_tells_watchers_to_start_over(celery_worker, start_worker, owner, slow_model):
    doomed = start_worker("crashy")
    job = _submit(owner)
    # Watchers must have seen more than the retry will say, so it cannot just carry on from there.
    wait_for(lambda: len(visible_text(streams.read_events(job.id)).split()) > 5, what="six words streamed")

    doomed.kill()
    slow_model.config = {"tokens": 5, "tokens_per_second": 60}  # the operator shortened the answer meanwhile
    slow_model.save()
    start_worker("crashy")
    job = wait_finished(job)

    events = streams.read_events(job.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.output_text == "one two three four five"
    assert any(e.type == "status" and e.data.get("restart") for e in events)
    assert visible_text(events) == job.output_text


def test_killing_only_the_pool_process_also_recovers(celery_worker, start_worker, owner, slow_model):
    worker = start_worker("crashy")
    job = _submit(owner)
    wait_streaming(job)
    children = subprocess.run(["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the prefork worker should have a pool process"

    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    job = wait_finished(job)

    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt >= 2
    assert job.output_text == _expected_text()


def test_a_job_killed_on_its_last_attempt_fails_with_a_clear_code(celery_worker, start_worker, owner, slow_model):
    doomed = start_worker("crashy")
    job = _submit(owner)
    Job.objects.filter(id=job.id).update(max_attempts=1)
    wait_streaming(job)

    doomed.kill()
    job = wait_finished(job)

    assert (job.status, job.error_code) == (JobStatus.FAILED, "worker_lost")
    assert "stopped responding" in job.error_message


def test_a_watcher_connected_through_the_crash_ends_with_exactly_the_stored_output(
    celery_worker, start_worker, daphne_server, owner, owner_key, slow_model
):
    doomed = start_worker("crashy")
    job = _submit(owner)

    with open_job_socket(daphne_server, job.id, owner_key) as ws:
        before = watch_socket(ws, limit=5)
        doomed.kill()
        start_worker("crashy")
        after = watch_socket(ws, timeout=60)

    job.refresh_from_db()
    events = before.events + after.events
    watched = Watch(events=events)
    assert job.status == JobStatus.SUCCEEDED
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["type"] == "status" and e["data"].get("attempt") == 2 for e in events)
    assert watched.text == job.output_text == _expected_text()
