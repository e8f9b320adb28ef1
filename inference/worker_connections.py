"""Database connections in workers: kept across tasks by a prefork child, closed after each in a thread pool.

Celery's Django fixup closes every connection before and after every task
(celery 5.5 and later), so each job paid a fresh PostgreSQL connect on its
critical path: a few milliseconds before its first token. A prefork child runs
one task at a time on one thread, so it treats tasks as Django treats
requests instead: `close_old_connections()` before and after (CONN_MAX_AGE
and CONN_HEALTH_CHECKS apply; a connection the database dropped is replaced
before use). A thread pool runs hundreds of tasks on hundreds of threads, each
with its own connection: those still close after every task, or idle threads
would hold the database's connection slots.

`CELERY_DB_REUSE_MAX` (settings) turns the fixup's own closing down.

A prefork child skips Django's health check (a `SELECT 1`, one more round trip
before every claim) when its previous task ended moments ago, as daphne's
database threads do (inference/db_threads.py). Should the server have dropped
the connection meanwhile, the claim fails, the task is retried within a second
(DatabaseUnavailable) and the retry finds the connection broken and reconnects.
"""

from __future__ import annotations

import time

from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections, connections

# A connection a prefork child used this recently is trusted without a health check.
TRUST_RECENT_CONNECTION_SECONDS = 5.0

# True in a prefork child, the only process where one thread runs every task.
_one_task_at_a_time = False
_last_task_ended = float("-inf")


def one_task_at_a_time() -> bool:
    """Whether this process runs its tasks one after another on one thread (a prefork child):
    it keeps its database connection between tasks, as Django does between requests."""
    return _one_task_at_a_time


@worker_process_init.connect
def _on_pool_process_start(**kwargs) -> None:
    global _one_task_at_a_time
    _one_task_at_a_time = True


@task_prerun.connect
def _before_task(**kwargs) -> None:
    close_old_connections()
    if _one_task_at_a_time and time.monotonic() - _last_task_ended < TRUST_RECENT_CONNECTION_SECONDS:
        for connection in connections.all(initialized_only=True):
            if connection.connection is not None:
                connection.health_check_done = True


@task_postrun.connect
def _after_task(**kwargs) -> None:
    global _last_task_ended
    if _one_task_at_a_time:
        close_old_connections()
        _last_task_ended = time.monotonic()
    else:
        connections.close_all()
