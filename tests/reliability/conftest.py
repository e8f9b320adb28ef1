"""Fixtures of the reliability tests: platform processes on parts a test may break."""

from __future__ import annotations

import pytest

from tests.support.processes import DaphneProcess, free_port, start_redis


@pytest.fixture
def platform_on_own_redis(worker_env, tmp_path):
    """daphne and the worker's environment on a Redis of this test's own, to restart at will."""
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = {"server": start_redis(port, tmp_path)}

    def restart_empty() -> None:
        redis["server"].terminate()
        redis["server"].wait(timeout=10)
        redis["server"] = start_redis(port, tmp_path)

    server = DaphneProcess({**worker_env, "REDIS_URL": redis_url}).start()
    yield server, {"REDIS_URL": redis_url}, restart_empty
    server.stop()
    redis["server"].terminate()
    redis["server"].wait(timeout=10)


@pytest.fixture
def session_worker_paused(celery_worker):
    """The session's shared worker stopped for the test, and started again after it.

    Its beat reaps every job of the test database: a job of a platform on its own Redis, once
    its worker is gone, could be requeued by that reaper onto the session's Redis, where no
    worker of the test would ever see it.
    """
    celery_worker.stop()
    yield
    celery_worker.start()
