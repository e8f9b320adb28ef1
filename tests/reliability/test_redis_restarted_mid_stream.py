"""Redis restarted empty while jobs stream (no persistence: their logs, the queues, all gone).

The jobs go on in their workers and succeed; each log is re-seeded above every position a
watcher held, so a watcher that reconnects with `after=N` ends with exactly the stored answer.
"""

from __future__ import annotations

import httpx
import pytest

from inference.models import Job, JobStatus
from tests.reliability.paced_jobs import slow_echo_model, wait_finished
from tests.support.watchers import Watch, follow_through_outages, watch_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "redis-restart"
WORDS = "one two three four five"
TOKENS = 300


def _expected_text() -> str:
    words = WORDS.split()
    return " ".join(words[i % len(words)] for i in range(TOKENS))


@pytest.mark.parametrize(
    ("pool", "jobs"),
    [
        ("prefork", 1),  # as `make run` deploys it: a job that Celery canceled on losing its broker died with it
        ("threads", 3),  # several jobs, their deltas through the process's one log writer
    ],
)
def test_jobs_streaming_through_a_redis_restart_succeed_and_watchers_end_with_their_text(
    start_worker, platform_on_own_redis, owner, owner_key, pool, jobs
):
    server, redis_env, restart_empty = platform_on_own_redis
    slow_echo_model(queue=QUEUE, tokens=TOKENS, tokens_per_second=50, max_output_tokens=500)
    worker = start_worker(QUEUE, env=redis_env, as_deployed=True, pool=pool, concurrency=max(jobs, 2))
    auth = {"Authorization": f"Bearer {owner_key}"}
    body = {"model": "slow-echo", "input": {"messages": [{"role": "user", "content": WORDS}]}}
    job_ids = [httpx.post(f"{server.url}/api/v1/jobs", json=body, headers=auth).json()["id"] for _ in range(jobs)]
    restarted = []

    def restart_once_streaming(watch: Watch) -> None:
        if not restarted and sum(event["type"] == "delta" for event in watch.events) >= 5:
            restart_empty()
            restarted.append(watch.seqs[-1])

    watches = [follow_through_outages(server, job_ids[0], owner_key, restart_once_streaming)]
    watches += [follow_through_outages(server, job_id, owner_key, lambda watch: None) for job_id in job_ids[1:]]

    for job_id, watch in zip(job_ids, watches, strict=True):
        job = wait_finished(Job.objects.get(id=job_id))
        assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1), job.error_message
        assert job.output_text == _expected_text()
        assert watch.seqs == sorted(set(watch.seqs)), "no event twice, none out of order"
        assert watch.text == job.output_text
        assert watch_job(server, job_id, owner_key).text == job.output_text  # and anyone watching from the start
    first = watches[0]
    assert restarted, "Redis was never restarted"
    assert any(event["type"] == "status" and event["data"].get("restart") for event in first.events)
    assert "its event log is written again" in worker.log()
