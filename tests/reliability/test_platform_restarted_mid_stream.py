"""The whole platform restarts mid-stream, as after a power cut: the worker, daphne and Redis all die at once.

Redis keeps nothing on disk: the job's log and its queue message are gone with it. The reaper
finds the job's lease expired and runs it again. Its new log is numbered above every position a
watcher could hold (the job's reserved log position, kept in PostgreSQL), so the watcher that
comes back with `after=N` is told to start over and ends with exactly the stored answer.
"""

from __future__ import annotations

import httpx
import pytest

from inference.models import Job, JobStatus
from tests.reliability.paced_jobs import slow_echo_model, wait_finished
from tests.support.watchers import Watch, follow_through_outages, watch_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "power-cut"
WORDS = "one two three four five six seven"
TOKENS = 400
# A delta per token: the log grows well past its first reservation before the answer ends.
ONE_TOKEN_PER_DELTA = {"STREAM_COALESCE_TOKENS": "1"}


# Early (no log position reserved yet), and well on (past streams.RESTART_GAP: a position reserved)
@pytest.mark.parametrize("events_before_the_cut", [4, 150])
def test_a_job_cut_off_with_the_whole_platform_succeeds_again_and_its_watcher_ends_with_its_text(
    session_worker_paused, start_worker, platform_on_own_redis, owner, owner_key, events_before_the_cut
):
    server, redis_env, restart_empty = platform_on_own_redis
    slow_echo_model(queue=QUEUE, tokens=TOKENS, tokens_per_second=100, max_output_tokens=1000)
    doomed = start_worker(QUEUE, env={**redis_env, **ONE_TOKEN_PER_DELTA}, as_deployed=True)
    body = {"model": "slow-echo", "input": {"messages": [{"role": "user", "content": WORDS}]}}
    auth = {"Authorization": f"Bearer {owner_key}"}
    job_id = httpx.post(f"{server.url}/api/v1/jobs", json=body, headers=auth).json()["id"]
    cut = []

    def cut_the_power(watch: Watch) -> None:
        if not cut and watch.seqs[-1] >= events_before_the_cut:
            doomed.kill()
            server.kill()
            restart_empty()
            cut.append(watch.seqs[-1])
            server.start()
            # With beat and the default queue: the reaper finds the job and gives it a new attempt.
            start_worker(f"{QUEUE},default", env={**redis_env, **ONE_TOKEN_PER_DELTA}, beat=True)

    watch = follow_through_outages(server, job_id, owner_key, cut_the_power)

    job = wait_finished(Job.objects.get(id=job_id))
    assert cut, "the power was never cut"
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 2), job.error_message
    assert job.output_text == " ".join(WORDS.split()[i % 7] for i in range(TOKENS))
    assert watch.seqs == sorted(set(watch.seqs)), "no event twice, none out of order"
    after_the_cut = [event for event in watch.events if event["seq"] > cut[0]]
    restart = after_the_cut[0]  # the first thing a watcher that comes back is told: start over
    assert (restart["type"], restart["data"].get("restart")) == ("status", True), after_the_cut[:3]
    assert watch.text == job.output_text
    assert watch_job(server, job_id, owner_key).text == job.output_text  # and anyone watching from the start
