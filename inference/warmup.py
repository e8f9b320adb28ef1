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

import logging
import threading
import time

from celery import current_app
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from django.conf import settings
from django.db import close_old_connections, connection

from inference import loaded_models
from inference.models import AIModel

logger = logging.getLogger(__name__)

_started = threading.Event()


def models_to_warm(queues: list[str]) -> list[AIModel]:
    """The enabled models whose jobs go to one of `queues`."""
    return list(AIModel.objects.filter(enabled=True, queue__in=queues).order_by("slug"))


def _consumed_queues() -> list[str]:
    return sorted(queue.name for queue in current_app.amqp.queues.consume_from.values())


def _lifecycle(queues: list[str]) -> None:
    try:
        if settings.MODEL_WARMUP:
            models = models_to_warm(queues)
            connection.close()  # loading takes seconds; do not hold a connection meanwhile
            loaded_models.warm(models)
            logger.info("warmed %s", ", ".join(model.slug for model in models) or "no models")
    except Exception:
        logger.exception("warming models failed; they will load on their first job")
    finally:
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


def start_lifecycle(queues: list[str]) -> None:
    """Start warming (and later releasing) models in this process, once."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_lifecycle, args=(queues,), name="model-lifecycle", daemon=True).start()


@worker_process_init.connect
def _on_pool_process_start(**kwargs) -> None:
    start_lifecycle(_consumed_queues())


@worker_ready.connect
def _on_worker_ready(sender, **kwargs) -> None:
    # Prefork children warm themselves (above); other pools run tasks in this very process.
    from celery.concurrency.prefork import TaskPool as PreforkPool

    if not isinstance(sender.pool, PreforkPool):
        start_lifecycle(_consumed_queues())


@task_prerun.connect
def _on_task_start(**kwargs) -> None:
    loaded_models.job_started()


@task_postrun.connect
def _on_task_end(**kwargs) -> None:
    loaded_models.job_ended()
