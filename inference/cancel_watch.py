"""One thread per worker process asks Redis which of the process's running jobs were asked to stop.

Each running job used to ask for itself: a round trip from its own thread every
CANCEL_POLL_SECONDS between deltas. When two thread-pool workers started 200 paced streams
at once, their job threads made thousands of these polls a second, all queueing on
redis-py's connection pool lock, and the process's log writer queued there behind them:
every stream of the process stalled for 300-600 ms. Now one thread asks about every job of
the process in one MGET per interval, and a job's `Lease.should_stop()` only reads a flag.

A delta's append also reports a cancel (streams.append_all_reporting_cancel), so a streaming
job usually learns of it sooner than the next poll.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from inference import streams
from inference.background import start_daemon

logger = logging.getLogger(__name__)

# How often the process asks; a cancel reaches a job that sends no deltas within this long.
CANCEL_POLL_SECONDS = 0.05


class CancelWatch:
    """The running jobs of this process whose cancel requests one thread polls for."""

    def __init__(self) -> None:
        self._watched: dict[str, set[threading.Event]] = {}  # job id -> the events to set on a cancel
        self._changed = threading.Condition()
        self._pid: int | None = None

    def watch(self, job_id: Any, canceled: threading.Event) -> None:
        """Set `canceled` once the job is asked to stop (within CANCEL_POLL_SECONDS), until `unwatch`."""
        with self._changed:
            # Celery's prefork pool forks after import: each child starts its own thread on first use.
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._watched.clear()
                start_daemon(self._run)
            self._watched.setdefault(str(job_id), set()).add(canceled)
            self._changed.notify()

    def unwatch(self, job_id: Any, canceled: threading.Event) -> None:
        with self._changed:
            events = self._watched.get(str(job_id))
            if events is not None:
                events.discard(canceled)
                if not events:
                    del self._watched[str(job_id)]

    def _run(self) -> None:
        failing = False
        while True:
            with self._changed:
                while not self._watched:
                    self._changed.wait()
                job_ids = list(self._watched)
            try:
                canceled = streams.canceled_among(job_ids)
            except Exception:
                # Redis away: said once per outage. The lease's heartbeat still finds cancels in the database.
                if not failing:
                    logger.warning("cannot poll Redis for cancel requests", exc_info=True)
                failing = True
            else:
                failing = False
                with self._changed:
                    for job_id in canceled:
                        for event in self._watched.get(job_id, ()):
                            event.set()
            time.sleep(CANCEL_POLL_SECONDS)


cancel_watch = CancelWatch()
