"""`manage.py runjob` follows a job's log and prints the answer the way a watcher shows it."""

import io
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from inference import streams
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import Usage, job_finish, job_start, jobs_reap
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli_model(db):
    # On a queue of its own that no worker consumes: the test plays the worker.
    return AIModel.objects.create(
        slug="cli-echo", display_name="CLI echo", task="chat", backend="echo", queue=f"nobody-{uuid.uuid4().hex[:8]}"
    )


def _runjob_in_background(owner):
    out, err = io.StringIO(), io.StringIO()

    def run():
        try:
            call_command("runjob", "cli-echo", "one two", "--user", owner.username, stdout=out, stderr=err)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    job = wait_for(lambda: Job.objects.filter(owner=owner).first(), what="runjob to submit its job")
    return job, thread, out, err


def _lose_the_worker(job) -> None:
    attempt = Job.objects.get(id=job.id).attempt
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    jobs_reap()  # or the session worker's beat, should its reaper come first: either requeues it once
    assert Job.objects.filter(id=job.id, status=JobStatus.QUEUED, attempt=attempt + 1).exists()


def test_runjob_prints_a_seamless_retry_as_one_answer_and_starts_over_only_on_a_restart(owner, cli_model):
    job, runjob, out, err = _runjob_in_background(owner)

    job_start(job_id=job.id, attempt=1, worker="w1")
    streams.append_event(job.id, 1, "delta", {"text": "one "})
    _lose_the_worker(job)
    job_start(job_id=job.id, attempt=2, worker="w2")
    streams.append_event(job.id, 2, "delta", {"text": "two "})  # the retry continues where attempt 1 stopped
    _lose_the_worker(job)
    job_start(job_id=job.id, attempt=3, worker="w3")
    streams.append_event(job.id, 3, "status", {"status": "running", "attempt": 3, "restart": True})
    streams.append_event(job.id, 3, "delta", {"text": "uno dos"})
    job_finish(job_id=job.id, attempt=3, status=JobStatus.SUCCEEDED, usage=Usage(2, 2), output_text="uno dos")
    runjob.join(timeout=30)

    assert not runjob.is_alive()
    assert out.getvalue() == "one two \nuno dos\n"
    assert err.getvalue().count("starts over") == 1
    assert "[attempt 3 came out differently; the answer starts over]" in err.getvalue()
    assert "succeeded; 2 prompt + 2 completion tokens" in err.getvalue()
