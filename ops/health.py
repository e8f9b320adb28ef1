"""Readiness checks: each returns None when healthy, or what is wrong."""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

from inference import streams
from inference.workers import queues_still_loading, workers_online

logger = logging.getLogger(__name__)


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc.__class__.__name__}: {exc}".strip()
    return None


def check_redis() -> str | None:
    try:
        streams.redis_client().ping()
    except Exception as exc:
        return f"redis unreachable: {exc.__class__.__name__}: {exc}".strip()
    return None


def check_workers() -> str | None:
    try:
        online = workers_online()
    except Exception as exc:
        return f"cannot list workers: {exc.__class__.__name__}"
    if not online:
        return "no Celery worker has reported in the last 15 seconds"
    return None


def check_models() -> str | None:
    """Not ready while some queue's worker processes are all still loading their models: a job
    sent there now would wait for the load (seconds for a torch model) before its first token."""
    try:
        loading = queues_still_loading()
    except Exception as exc:
        return f"cannot list worker processes: {exc.__class__.__name__}"
    if not loading:
        return None
    queues = "; ".join(f"{', '.join(models) or 'its models'} on queue {queue}" for queue, models in loading.items())
    return f"workers still loading models: {queues}"


READINESS_CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "models": check_models,
}
_KEPT_IN_REDIS = ("workers", "models")


def readiness() -> dict[str, str | None]:
    """Each part's problem, or None; Redis is checked before workers and models, which it records."""
    results: dict[str, str | None] = {}
    for name, check in READINESS_CHECKS.items():
        if name in _KEPT_IN_REDIS and results.get("redis"):
            results[name] = "unknown while redis is unreachable"
            continue
        results[name] = check()
    return results


# Probes ask every few seconds (make run twice a second while the models load): the log says what
# is wrong when it changes, and again each minute while it lasts.
REPEAT_LOG_SECONDS = 60
_last_logged: tuple[str, float] = ("", 0.0)
_last_logged_lock = threading.Lock()


def log_readiness(failing: dict[str, str]) -> None:
    """Log what is not ready, unless the same was logged less than REPEAT_LOG_SECONDS ago; and being ready again."""
    global _last_logged
    problem, now = "; ".join(failing.values()), time.monotonic()
    with _last_logged_lock:
        last, logged_at = _last_logged
        if problem == last and (not problem or now - logged_at < REPEAT_LOG_SECONDS):
            return
        _last_logged = (problem, now)
    if problem:
        logger.warning("not ready: %s", problem)
    else:
        logger.info("ready again")
