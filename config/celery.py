"""The Celery app: configured from Django settings under the CELERY_ namespace."""

import functools
import logging
import os
import warnings

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning

from config import celery_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
celery_redis_transport.install()

app = Celery("djinn", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# At every lost broker connection Celery warns that 6.0 will cancel the running tasks by default:
# Djinn chose not to (CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS), and an outage's
# log should say what happened, not repeat a page about a default that does not apply.
warnings.filterwarnings(
    "ignore", r"\s*In Celery 5\.1 we introduced an optional breaking change", CPendingDeprecationWarning
)


class QuietScheduledTasks(logging.Filter):
    """Drops Celery's "received" and "succeeded" lines for the tasks beat sends on a schedule.

    Beat sends the reaper every 10 seconds: its two lines each time buried the jobs' lines in a
    worker's log. These tasks log what they did themselves when they did something (the reaper's
    "reaper: ..." line), and their failures are still logged, at ERROR.
    """

    @functools.cached_property
    def scheduled(self) -> frozenset[str]:
        # Read at the first record, not at import: the schedule comes from Django's settings.
        return frozenset(entry["task"] for entry in app.conf.beat_schedule.values())

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if record.levelno > logging.INFO or not isinstance(data, dict):
            return True
        return data.get("name") not in self.scheduled


for celery_logger in ("celery.worker.strategy", "celery.app.trace"):  # where those two lines come from
    logging.getLogger(celery_logger).addFilter(QuietScheduledTasks())
