"""A running attempt's lease, renewed with every other lease of its process, and the stop signal the backend polls.

Each lease used to run a heartbeat thread of its own. When two thread-pool workers ran 200
paced streams started together, their 200 heartbeats came due together, each a database
round trip from its own thread, every JOB_HEARTBEAT_SECONDS. Now one thread per process
renews every lease the process holds in one transaction per interval, and a lease is only an
entry in its table.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection

from inference.background import start_daemon
from inference.cancel_watch import cancel_watch
from inference.services.jobs import jobs_heartbeat

logger = logging.getLogger(__name__)


class Lease:
    """Holds a job attempt while the backend runs.

    `should_stop()` turns true when the job was canceled or the attempt lost
    its lease (the reaper gave the job to a new attempt): either way the
    backend stops between two chunks. It only reads flags: the process's
    cancel watch (cancel_watch.py) asks Redis for every running job at once,
    and the process's lease keeper reads the database.
    """

    def __init__(self, job_id: Any, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.lost = threading.Event()
        self.canceled = threading.Event()

    def __enter__(self) -> Lease:
        cancel_watch.watch(self.job_id, self.canceled)
        lease_keeper.hold(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self.end()

    def end(self) -> None:
        """Stop renewing and watching: the attempt is about to store its result."""
        lease_keeper.release(self)
        cancel_watch.unwatch(self.job_id, self.canceled)

    def should_stop(self) -> bool:
        return self.lost.is_set() or self.canceled.is_set()

    def cancel_reported(self, canceled: bool) -> None:
        """Take the answer of a cancel check made elsewhere (a delta's append)."""
        if canceled:
            self.canceled.set()

    @property
    def key(self) -> tuple[str, int]:
        return str(self.job_id), self.attempt


class LeaseKeeper:
    """The leases this process holds, which one thread renews together every JOB_HEARTBEAT_SECONDS."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], Lease] = {}
        self._changed = threading.Condition()
        self._pid: int | None = None

    def hold(self, lease: Lease) -> None:
        """Renew `lease` until `release`; its job was just claimed, so its heartbeat is fresh."""
        with self._changed:
            # Celery's prefork pool forks after import: each child starts its own thread on first use.
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._held.clear()
                start_daemon(self._run)
            self._held[lease.key] = lease
            self._changed.notify()

    def release(self, lease: Lease) -> None:
        with self._changed:
            if self._held.get(lease.key) is lease:
                del self._held[lease.key]

    def _run(self) -> None:
        last_beat = time.monotonic()
        while True:
            with self._changed:
                while not self._held:
                    self._changed.wait()
                    last_beat = time.monotonic()  # the first lease after a pause was claimed just now
                # Waits on the condition, not a sleep: a test that shortens the interval is heard at once.
                while (remaining := last_beat + settings.JOB_HEARTBEAT_SECONDS - time.monotonic()) > 0:
                    self._changed.wait(remaining)
                held = dict(self._held)
            last_beat = time.monotonic()
            if held:
                self._renew(held)

    def _renew(self, held: dict[tuple[str, int], Lease]) -> None:
        try:
            renewed = jobs_heartbeat(attempts=held)
        except Exception:
            # A blip in the database: try again next beat; a lease outlives several.
            logger.warning("could not renew the leases of %d running jobs", len(held), exc_info=True)
            return
        finally:
            # One beat every few seconds: a worker's idle connection is better given back.
            connection.close()
        with self._changed:
            for key, lease in held.items():
                if self._held.get(key) is not lease:
                    continue  # its attempt stored its result meanwhile: the job finished, it was not lost
                if key not in renewed:
                    logger.warning("job %s attempt %s lost its lease", *key)
                    del self._held[key]  # nothing left to renew: the attempt stops at its next chunk
                    lease.lost.set()
                elif renewed[key]:
                    lease.canceled.set()


lease_keeper = LeaseKeeper()
