"""Worker presence in Redis: who is online, on which queues, and whether their models are loaded.

Each worker's main process refreshes a short-lived key; `/readyz` and the
operators' views read them. A worker that dies simply stops refreshing.
Each process that runs jobs (a prefork child, or the main process of the
solo and threads pools) keeps a record of its own, saying whether it is still
loading its models: the first job of a queue whose processes are all still
loading would wait for the load (seconds for a torch model).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass, field

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from inference import streams
from inference.background import start_daemon

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


@dataclass
class ProcessRecord:
    """What one job-running process says of itself."""

    queues: list[str]
    worker_pid: int  # the worker's main process: a prefork child's parent, else the process itself
    models: list[str] = field(default_factory=list)
    loaded: bool = False
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def _process_key(host: str, pid: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:worker-processes:{host}:{pid}"


_record: ProcessRecord | None = None
_record_lock = threading.Lock()


def process_loading(queues: list[str], models: list[str], *, worker_pid: int) -> None:
    """Say this process (of the worker whose main process is `worker_pid`) is loading `models` for
    `queues`; the record is kept fresh while the process lives."""
    global _record
    with _record_lock:
        first = _record is None
        _record = ProcessRecord(queues=queues, worker_pid=worker_pid, models=models)
    _write_record()
    if first:
        start_daemon(_refresh_record)


def process_loaded() -> None:
    """Say this process has loaded its models (or given up on those that would not load)."""
    with _record_lock:
        if _record is None:
            return
        _record.loaded = True
    _write_record()


def _write_record() -> None:
    with _record_lock:
        record = _record
        if record is None:
            return
        value = json.dumps(asdict(record))
    try:
        streams.redis_client().set(_process_key(record.host, record.pid), value, ex=PRESENCE_TTL_SECONDS)
    except Exception:
        logger.warning("could not record this process's models", exc_info=True)


def _refresh_record() -> None:
    while not _stop.wait(PRESENCE_INTERVAL_SECONDS):
        _write_record()


def _parse_record(value: str | None) -> ProcessRecord | None:
    """A record, or None if it expired meanwhile or another release wrote it in another shape."""
    try:
        return ProcessRecord(**json.loads(value)) if value else None
    except (TypeError, ValueError):
        return None


def worker_processes() -> list[ProcessRecord]:
    """The records of every live job-running process."""
    client = streams.redis_client()
    keys = sorted(client.scan_iter(match=_process_key("*", "*"), count=100))
    return [record for value in (client.mget(keys) if keys else []) if (record := _parse_record(value))]


def queues_still_loading() -> dict[str, list[str]]:
    """Queues no worker is ready to serve yet, each with the models its processes are loading.

    A worker is ready for a queue once every one of its processes serving it has loaded its
    models: a worker hands jobs to any of its processes, and one still loading would keep its
    job waiting. Another worker loading (a rolling restart) leaves a queue with a ready worker
    ready. A queue no process serves is not this question (see `workers_online`).
    """
    records = worker_processes()
    by_worker: dict[tuple[str, int], list[ProcessRecord]] = {}
    for record in records:
        by_worker.setdefault((record.host, record.worker_pid), []).append(record)
    ready = {
        queue
        for processes in by_worker.values()
        for queue in {queue for record in processes for queue in record.queues}
        if all(record.loaded for record in processes if queue in record.queues)
    }
    loading: dict[str, set[str]] = {}
    for record in records:
        for queue in record.queues:
            if not record.loaded and queue not in ready:
                loading.setdefault(queue, set()).update(record.models)
    return {queue: sorted(models) for queue, models in sorted(loading.items())}


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
