"""A running attempt's lease: a heartbeat thread plus the stop signal the backend polls."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connection

from inference.background import start_daemon
from inference.cancel_watch import cancel_watch
from inference.services.jobs import job_heartbeat

logger = logging.getLogger(__name__)


class Lease:
    """Holds a job attempt while the backend runs.

    `should_stop()` turns true when the job was canceled or the attempt lost
    its lease (the reaper gave the job to a new attempt): either way the
    backend stops between two chunks. It only reads flags: the process's
    cancel watch (cancel_watch.py) asks Redis for every running job at once,
    and the heartbeat reads the database.
    """

    def __init__(self, job_id: Any, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.lost = threading.Event()
        self.canceled = threading.Event()
        self._done = threading.Event()
        self._beating: threading.Event | None = None

    def __enter__(self) -> Lease:
        cancel_watch.watch(self.job_id, self.canceled)
        self._beating = start_daemon(self._beat)
        return self

    def __exit__(self, *exc_info) -> None:
        self.end()
        self._beating.wait(timeout=settings.JOB_HEARTBEAT_SECONDS + 5)

    def end(self) -> None:
        """Stop renewing and watching: the attempt is about to store its result."""
        self._done.set()
        cancel_watch.unwatch(self.job_id, self.canceled)

    def should_stop(self) -> bool:
        return self.lost.is_set() or self.canceled.is_set()

    def cancel_reported(self, canceled: bool) -> None:
        """Take the answer of a cancel check made elsewhere (a delta's append)."""
        if canceled:
            self.canceled.set()

    def _beat(self) -> None:
        try:
            while not self._done.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    renewed = job_heartbeat(job_id=self.job_id, attempt=self.attempt)
                    if renewed is None:
                        if self._done.is_set():
                            return  # the attempt stored its result meanwhile: the job finished, it was not lost
                        logger.warning("job %s attempt %s lost its lease", self.job_id, self.attempt)
                        self.lost.set()
                        return
                    if renewed.cancel_requested_at is not None:
                        self.canceled.set()
                except Exception:
                    # A blip in the database: try again next beat; the lease outlives several.
                    logger.warning("heartbeat failed for %s", self.job_id, exc_info=True)
                finally:
                    # One beat every few seconds: holding a connection per running job
                    # between beats would cap concurrent jobs at the database's limit.
                    connection.close()
        finally:
            connection.close()
