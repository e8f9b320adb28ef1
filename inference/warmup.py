"""Model lifecycle in worker processes: warm the models a worker serves, release the ones turned off.

When a process that runs tasks starts (each prefork child; the main process
for the solo and threads pools), a background thread loads every enabled
model routed to this worker's queues, so the first job does not pay for the
load, and then, every MODEL_RELEASE_CHECK_SECONDS, releases the models an
operator disabled, edited or deleted while the process sits idle. It runs in
a thread because Celery kills a pool child that takes more than a few seconds
to start, and loading a torch model takes longer than that.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

from celery import current_app
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_before_create_process,
    worker_process_init,
    worker_ready,
)
from django.conf import settings
from django.db import close_old_connections, connection

from inference import loaded_models, workers
from inference.backends.base import cpu_threads, set_cpu_threads
from inference.models import AIModel

logger = logging.getLogger(__name__)

_started = threading.Event()
# Set in the main process before it forks its pool, so each child knows how many siblings share the cores.
_pool_processes = 1


def models_to_warm(queues: list[str]) -> list[AIModel]:
    """The enabled models whose jobs go to one of `queues`."""
    return list(AIModel.objects.filter(enabled=True, queue__in=queues).order_by("slug"))


def _consumed_queues() -> list[str]:
    return sorted(queue.name for queue in current_app.amqp.queues.consume_from.values())


def _lifecycle(queues: list[str], worker_pid: int) -> None:
    try:
        models = models_to_warm(queues) if settings.MODEL_WARMUP else []
        connection.close()  # loading takes seconds; do not hold a connection meanwhile
        workers.process_loading(queues, [model.slug for model in models], worker_pid=worker_pid)
        if settings.MODEL_WARMUP:
            loaded_models.warm(models)
            # Set what start-up and the models made aside from the cyclic garbage collector: it
            # walked them all at every full collection, 100-240 ms with torch loaded, a stall in
            # every stream this process was writing (seen with gc.callbacks). New objects are
            # still collected as usual.
            gc.freeze()
            slugs = ", ".join(model.slug for model in models) or "no models"
            logger.info(
                "warmed %s; CPU threads per model in this process: %d; %d objects set aside from the collector",
                slugs,
                cpu_threads(),
                gc.get_freeze_count(),
            )
    except Exception:
        logger.exception("warming models failed; they will load on their first job")
    finally:
        workers.process_loaded()
        connection.close()
    interval = settings.MODEL_RELEASE_CHECK_SECONDS
    while interval:
        time.sleep(interval)
        try:
            close_old_connections()
            loaded_models.release_stale()
        except Exception:
            logger.warning("checking for disabled models failed", exc_info=True)
        finally:
            connection.close()


def threads_per_process(pool_processes: int) -> int:
    """MODEL_CPU_THREADS, or the cores shared out among the worker's processes."""
    return settings.MODEL_CPU_THREADS or max(1, (os.cpu_count() or 1) // max(1, pool_processes))


def start_lifecycle(queues: list[str], worker_pid: int) -> None:
    """Start warming (and later releasing) models in this process (of the worker whose main
    process is `worker_pid`), once."""
    if _started.is_set():
        return
    _started.set()
    set_cpu_threads(threads_per_process(_pool_processes))
    threading.Thread(target=_lifecycle, args=(queues, worker_pid), name="model-lifecycle", daemon=True).start()


@worker_before_create_process.connect
def _on_pool_growing(sender, **kwargs) -> None:
    global _pool_processes
    _pool_processes = getattr(sender, "_processes", None) or 1  # billiard's pool size, not public API


@worker_process_init.connect
def _on_pool_process_start(**kwargs) -> None:
    start_lifecycle(_consumed_queues(), worker_pid=os.getppid())


@worker_ready.connect
def _on_worker_ready(sender, **kwargs) -> None:
    # Prefork children warm themselves (above); other pools run tasks in this very process.
    from celery.concurrency.prefork import TaskPool as PreforkPool

    if not isinstance(sender.pool, PreforkPool):
        start_lifecycle(_consumed_queues(), worker_pid=os.getpid())


@task_prerun.connect
def _on_task_start(**kwargs) -> None:
    loaded_models.job_started()


@task_postrun.connect
def _on_task_end(**kwargs) -> None:
    loaded_models.job_ended()
