"""A running attempt's lease: a heartbeat thread plus the stop signal the backend polls."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection

from inference import streams
from inference.background import start_daemon
from inference.services.jobs import job_cancel_requested, job_heartbeat

logger = logging.getLogger(__name__)

# Polling Redis on every token would cost a round trip per token; each delta the worker
# writes also reports a cancel (log_writer.JobLog), so polls fill only the gaps between deltas.
CANCEL_POLL_SECONDS = 0.05


class Lease:
    """Holds a job attempt while the backend runs.

    `should_stop()` turns true when the job was canceled or the attempt lost
    its lease (the reaper gave the job to a new attempt): either way the
    backend stops between two chunks.
    """

    def __init__(self, job_id: Any, attempt: int, cancel_checked_at: float = float("-inf")):
        """`cancel_checked_at`: when (time.monotonic) the job was last found not canceled."""
        self.job_id = job_id
        self.attempt = attempt
        self.lost = threading.Event()
        self.canceled = threading.Event()
        self._done = threading.Event()
        self._next_cancel_poll = cancel_checked_at + CANCEL_POLL_SECONDS
        self._beating: threading.Event | None = None

    def __enter__(self) -> Lease:
        self._beating = start_daemon(self._beat)
        return self

    def __exit__(self, *exc_info) -> None:
        self.end()
        self._beating.wait(timeout=settings.JOB_HEARTBEAT_SECONDS + 5)

    def end(self) -> None:
        """Stop renewing: the attempt is about to store its result."""
        self._done.set()

    def should_stop(self) -> bool:
        if self.lost.is_set() or self.canceled.is_set():
            return True
        now = time.monotonic()
        if now >= self._next_cancel_poll:
            self._next_cancel_poll = now + CANCEL_POLL_SECONDS
            try:
                if streams.cancel_requested(self.job_id):
                    self.canceled.set()
            except Exception:  # Redis away: the heartbeat thread still sees cancels in the database
                logger.warning("cancel poll failed for %s", self.job_id, exc_info=True)
        return self.lost.is_set() or self.canceled.is_set()

    def cancel_checked(self, canceled: bool) -> None:
        """Note a cancel check made elsewhere (a delta's append); the next poll can wait."""
        self._next_cancel_poll = time.monotonic() + CANCEL_POLL_SECONDS
        if canceled:
            self.canceled.set()

    def _beat(self) -> None:
        try:
            while not self._done.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    if not job_heartbeat(job_id=self.job_id, attempt=self.attempt):
                        if self._done.is_set():
                            return  # the attempt stored its result meanwhile: the job finished, it was not lost
                        logger.warning("job %s attempt %s lost its lease", self.job_id, self.attempt)
                        self.lost.set()
                        return
                    if job_cancel_requested(job_id=self.job_id):
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
