"""Worker presence in Redis: who is online, on which queues.

Each worker's main process refreshes a short-lived key; `/readyz` and the
operators' views read them. A worker that dies simply stops refreshing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from inference import streams

logger = logging.getLogger(__name__)

PRESENCE_INTERVAL_SECONDS = 5
PRESENCE_TTL_SECONDS = 15
_stop = threading.Event()


def _presence_key(hostname: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:workers:{hostname}"


def workers_online() -> list[dict]:
    """Workers that announced themselves in the last PRESENCE_TTL_SECONDS."""
    client = streams.redis_client()
    keys = sorted(client.scan_iter(match=_presence_key("*"), count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value]


def _announce(hostname: str, queues: list[str]) -> None:
    record = json.dumps({"hostname": hostname, "queues": queues, "pid": os.getpid(), "host": socket.gethostname()})
    while not _stop.is_set():
        try:
            streams.redis_client().set(_presence_key(hostname), record, ex=PRESENCE_TTL_SECONDS)
        except Exception:
            logger.warning("could not announce worker presence", exc_info=True)
        _stop.wait(PRESENCE_INTERVAL_SECONDS)


@worker_ready.connect
def _on_worker_ready(sender, **kwargs) -> None:
    queues = sorted(queue.name for queue in sender.app.amqp.queues.consume_from.values())
    hostname = sender.hostname
    threading.Thread(target=_announce, args=(hostname, queues), name="presence", daemon=True).start()
    logger.info("worker %s ready on queues %s", hostname, ", ".join(queues))


@worker_shutdown.connect
def _on_worker_shutdown(sender, **kwargs) -> None:
    _stop.set()
    with contextlib.suppress(Exception):
        streams.redis_client().delete(_presence_key(sender.hostname))
