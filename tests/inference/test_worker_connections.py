"""Workers and the database: a connection kept from job to job, one dropped is replaced, a refused start is retried."""

import uuid

import pytest
from django.db import connection

from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from tests.inference.backends.conftest import finished
from tests.support.processes import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _run(owner, model: str = "reuse-echo") -> Job:
    job = job_submit(user=owner, model=model, input={"messages": [{"role": "user", "content": "hi there"}]})
    assert finished(job, timeout=30).status == JobStatus.SUCCEEDED
    return job


def _backends(application_name: str) -> list[tuple[int, object]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s ORDER BY backend_start",
            [application_name],
        )
        return cursor.fetchall()


def _echo_model(slug: str, queue: str, **config) -> AIModel:
    return AIModel.objects.create(slug=slug, display_name=slug, task="chat", backend="echo", queue=queue, config=config)


def test_a_prefork_child_reuses_its_connection_across_jobs_and_replaces_a_dropped_one(worker_env, owner):
    queue = f"reuse-{uuid.uuid4().hex[:8]}"
    _echo_model("reuse-echo", queue)
    _echo_model("reuse-slow", queue, tokens=30, tokens_per_second=20)  # a stream of 1.5 s
    application = f"djinn-test-{queue}"
    env = {
        **worker_env,
        "DATABASE_URL": f"{worker_env['DATABASE_URL']}?application_name={application}",
        "DATABASE_CONN_MAX_AGE": "60",
    }
    worker = WorkerProcess(env, queues=queue).start()
    try:
        _run(owner)
        (kept,) = wait_for(lambda: _backends(application), what="the child's connection")
        second = _run(owner)
        _run(owner)

        # Celery alone closes it after every task: each job would connect again before its first token.
        assert _backends(application) == [kept]
        assert kept[1] < second.created_at

        # Nor does a long stream give it back midway, only to connect again to store its result.
        assert _run(owner, "reuse-slow").completion_tokens == 30
        assert _backends(application) == [kept]

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [kept[0]])
        wait_for(lambda: not _backends(application), what="the connection to be dropped")

        # Used moments ago, the connection is trusted without a health check: the claim finds it
        # dead, and the task is tried again at once on a new one.
        assert "Retry in" not in worker.log()
        _run(owner)
        assert "Retry in" in worker.log()
        assert [pid for pid, _ in _backends(application)] != [kept[0]]
    finally:
        worker.stop()


def test_a_job_the_database_refused_to_start_is_tried_again_and_runs(worker_env, owner):
    queue = f"refused-{uuid.uuid4().hex[:8]}"
    _echo_model("reuse-echo", queue)
    role = f"djinn_{queue.replace('-', '_')}"  # does not exist yet: every connect is refused
    scheme, rest = worker_env["DATABASE_URL"].split("://", 1)
    env = {**worker_env, "DATABASE_URL": f"{scheme}://{role}@{rest.split('@', 1)[-1]}"}
    worker = WorkerProcess(env, queues=queue).start()
    try:
        job = job_submit(user=owner, model="reuse-echo", input={"messages": [{"role": "user", "content": "hi"}]})
        wait_for(lambda: "Retry in" in worker.log(), what="the refused start to be retried")
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED

        with connection.cursor() as cursor:
            cursor.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        ran = finished(job, timeout=30)
        assert (ran.status, ran.output_text) == (JobStatus.SUCCEEDED, "hi")
    finally:
        worker.stop()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_thread_pool_worker_runs_many_jobs_at_once_on_a_few_pooled_connections(worker_env, owner):
    queue = f"pooled-{uuid.uuid4().hex[:8]}"
    _echo_model("reuse-echo", queue, tokens_per_second=20)  # about a second each: the jobs overlap
    application = f"djinn-test-{queue}"
    env = {
        **worker_env,
        "DATABASE_URL": f"{worker_env['DATABASE_URL']}?application_name={application}",
        "DATABASE_POOL": "true",
        "DATABASE_POOL_MAX_SIZE": "3",
    }
    worker = WorkerProcess(env, queues=queue, concurrency=24, pool="threads").start()
    try:
        text = " ".join(f"w{i}" for i in range(20))
        jobs = [
            job_submit(user=owner, model="reuse-echo", input={"messages": [{"role": "user", "content": text}]})
            for _ in range(24)
        ]
        most_connections = 0

        def all_finished():
            nonlocal most_connections
            most_connections = max(most_connections, len(_backends(application)))
            return Job.objects.filter(id__in=[job.id for job in jobs], finished_at__isnull=False).count() == len(jobs)

        wait_for(all_finished, timeout=60, interval=0.02, what="every job to finish")

        assert set(Job.objects.filter(id__in=[job.id for job in jobs]).values_list("status", flat=True)) == {
            JobStatus.SUCCEEDED
        }
        assert 1 <= most_connections <= 3
    finally:
        worker.stop()
