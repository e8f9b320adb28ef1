"""A retry first regenerates, silently, the words watchers already have. Stopped or failing in that
stretch, it must keep those words: watchers never see text taken back, and the stored output is theirs."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inference import streams
from inference.models import AIModel, Job, JobStatus
from inference.services.events import visible_text
from inference.services.jobs import job_cancel, job_start, job_submit, jobs_reap
from tests.reliability.paced_jobs import wait_finished
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "catching-up"
WORDS = "one two three four five six seven eight"
SHOWN_TOKENS = 30  # what the first attempt streamed before its worker died


def _model(**config) -> AIModel:
    # 20 tokens/s: the retry spends 1.5 s regenerating the 30 tokens watchers already have.
    return AIModel.objects.create(
        slug="paced",
        display_name="Paced",
        task="chat",
        backend="echo",
        queue=QUEUE,
        config={"tokens": 60, "tokens_per_second": 20, **config},
    )


def _retry_after_a_dead_worker(owner) -> tuple[Job, str]:
    """A job whose first worker streamed SHOWN_TOKENS tokens and died; the reaper sends attempt 2."""
    job = job_submit(user=owner, model="paced", input={"messages": [{"role": "user", "content": WORDS}]})
    job_start(job_id=job.id, attempt=1, worker="dead-worker")
    words = WORDS.split()
    shown = "".join(words[i % len(words)] + " " for i in range(SHOWN_TOKENS))
    for start in range(0, len(shown), 40):
        streams.append_event(job.id, 1, "delta", {"text": shown[start : start + 40]})
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    jobs_reap()  # or the session worker's beat, should its reaper come first: either requeues it once
    assert Job.objects.filter(id=job.id, attempt=2).exists()
    return job, shown


def _attempt_two_running(job: Job) -> bool:
    job.refresh_from_db()
    return (job.attempt, job.status) == (2, JobStatus.RUNNING)


def test_a_retry_canceled_while_catching_up_keeps_what_watchers_saw(start_worker, owner):
    _model()
    start_worker(QUEUE)
    job, shown = _retry_after_a_dead_worker(owner)

    wait_for(lambda: _attempt_two_running(job), what="the retry to start")
    time.sleep(0.3)  # well inside the 1.5 s it spends on the words watchers have
    job_cancel(job=job)
    job = wait_finished(job)

    assert job.status == JobStatus.CANCELED
    assert job.output_text == shown
    assert job.completion_tokens >= SHOWN_TOKENS, "the answer's words count, not only those this attempt remade"
    events = streams.read_events(job.id)
    assert not [e for e in events if e.data.get("restart")], "nothing was taken back"
    assert visible_text(events) == job.output_text


def test_a_retry_failing_while_catching_up_keeps_what_watchers_saw(start_worker, owner):
    _model(fail_with="generation_failed", fail_after_tokens=10)
    start_worker(QUEUE)
    job, shown = _retry_after_a_dead_worker(owner)

    job = wait_finished(job)

    assert (job.status, job.error_code) == (JobStatus.FAILED, "generation_failed")
    assert job.output_text == shown
    assert job.completion_tokens >= SHOWN_TOKENS
    assert visible_text(streams.read_events(job.id)) == job.output_text
