"""The database drops a worker's connection while its job runs: the job still ends once, on its first attempt."""

import pytest
from django.db import connection

from inference import streams
from inference.models import JobStatus
from inference.services.jobs import job_submit
from tests.reliability.paced_jobs import slow_echo_model, wait_finished, wait_streaming

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

APPLICATION = "djinn-test-dropped-worker"  # how PostgreSQL names this worker's connections (PGAPPNAME)


def _drop_the_workers_connections() -> int:
    """What a PostgreSQL restart does to them: "terminating connection due to administrator command"."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [APPLICATION],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("tokens", "tokens_per_second", "first_write_after_the_drop"),
    [
        (60, 30, "the result was stored"),
        # A delta a token, past the positions its first token reserved: it reserves more before it goes on.
        (1200, 400, "its log's positions were reserved"),
    ],
)
def test_a_result_is_stored_through_a_connection_dropped_while_the_job_ran(
    celery_worker, start_worker, owner, tokens, tokens_per_second, first_write_after_the_drop
):
    slow_echo_model(queue="dropped", tokens=tokens, tokens_per_second=tokens_per_second, max_output_tokens=2000)
    worker = start_worker("dropped", env={"PGAPPNAME": APPLICATION, "STREAM_COALESCE_TOKENS": "1"})
    job = job_submit(user=owner, model="slow-echo", input={"messages": [{"role": "user", "content": "a b c"}]})
    wait_streaming(job)

    assert _drop_the_workers_connections() >= 1  # the job's own, held while it generates

    wait_finished(job, timeout=30)
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt == 1  # stored by the attempt that generated it, not run again by the reaper
    assert job.completion_tokens == tokens
    assert [e.data["status"] for e in streams.read_events(job.id) if e.type == "done"] == ["succeeded"]
    log = worker.log()
    assert f"the database dropped its connection as {first_write_after_the_drop}" in log
    assert "failed in its backend" not in log
