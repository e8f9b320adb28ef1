"""Shared fixtures: named users, a registered echo model, and real worker processes.

The environment (test database, test Redis, short leases) is set by
config/settings_test.py before Django reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.processes import DaphneProcess, WorkerProcess


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    from inference.streams import redis_client

    redis_client().flushdb()
    return


@pytest.fixture(scope="session", autouse=True)
def _database_threads_closed_before_the_database_is_dropped(django_db_setup):
    """Tests that run consumers or async views in this process leave connections on db_threads."""
    yield
    from inference import db_threads

    db_threads.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_deadlocks():
    """Retry the TRUNCATE that empties the database after a transactional test when it deadlocks.

    A live worker or daphne of the session may still be reading a job (it takes its tables' locks one
    by one) while the TRUNCATE takes them all in another order; PostgreSQL then aborts the TRUNCATE.
    Nothing was emptied, and once the reader is done it goes through.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations
    from django.db.utils import OperationalError
    from psycopg.errors import DeadlockDetected

    flush = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(3):
            try:
                return flush(self, sql_list)
            except OperationalError as exc:
                if attempt == 2 or not isinstance(exc.__cause__, DeadlockDetected):
                    raise

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = flush


DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def unreachable_redis(settings) -> Iterator[str]:
    """REDIS_URL names a port nothing listens on, for this test only; the process's Redis client
    is made anew from it, and from the real URL again afterwards.

    The real URL is back before the client made from the dead one is dropped: a background thread
    of an earlier test (a cancel watch, a lease keeper) that asks for the client in between must
    not leave a dead one cached for every test after (it did, once in CI: 80 errors).
    """
    from inference import streams

    real = settings.REDIS_URL
    streams.redis_client.cache_clear()
    settings.REDIS_URL = DEAD_REDIS_URL
    yield DEAD_REDIS_URL
    settings.REDIS_URL = real
    streams.redis_client.cache_clear()


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", email="owner@example.com", password="pw-owner-1")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user(username="outsider", email="out@example.com", password="pw-out-1")


@pytest.fixture
def echo_model(db):
    from inference.models import AIModel

    return AIModel.objects.create(
        slug="echo", display_name="Echo", task="chat", backend="echo", max_input_chars=2000, max_output_tokens=500
    )


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:
    """The environment a platform child process needs to share the test database and Redis."""
    from django.db import connection

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    # Each process decides (daphne's config/asgi.py turns the pool on; a prefork worker must not
    # have it): one a test module set in this process by importing config.asgi must not leak.
    env.pop("DATABASE_POOL", None)
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env["DATABASE_URL"] = f"{base}/{name}"
    env["DATABASE_CONN_MAX_AGE"] = "0"
    env["LOG_LEVEL"] = "INFO"
    yield env
    # What the platform's processes left open would keep the test database from being dropped.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def celery_worker(worker_env):
    """One real worker (with beat, so the reaper runs) shared by the integration tests."""
    worker = WorkerProcess(worker_env, queues="default", beat=True).start()
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(worker_env):
    """Start extra workers for a test; each is stopped (or already killed) afterwards."""
    started: list[WorkerProcess] = []

    def start(queues: str, env: dict[str, str] | None = None, **kwargs) -> WorkerProcess:
        """`env`: settings for this worker on top of the shared ones (MODEL_WARMUP="false"...)."""
        worker = WorkerProcess({**worker_env, **(env or {})}, queues=queues, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def daphne_server(worker_env):
    """A real daphne serving the platform (HTTP and websockets) for the whole session."""
    server = DaphneProcess(worker_env).start()
    yield server
    server.stop()


@pytest.fixture
def owner_key(owner):
    from accounts.services import api_key_create

    return api_key_create(user=owner, name="tests").plaintext


@pytest.fixture
def outsider_key(outsider):
    from accounts.services import api_key_create

    return api_key_create(user=outsider, name="tests").plaintext


@pytest.fixture(scope="session")
def live_server_url(daphne_server) -> str:
    """The base URL of the real daphne serving the platform for this session."""
    return daphne_server.url
