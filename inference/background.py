"""Helper threads, started without waiting for them.

`threading.Thread.start()` blocks until the new thread has run its first
line: on a busy machine that wait (the new thread must be scheduled and take
the GIL) was a fifth of a short job's time in its worker, and every streaming
job starts one (its delta sender). `start_daemon` hands the function to a new
thread and returns at once.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable


def start_daemon(target: Callable[[], None]) -> threading.Event:
    """Run `target` on a new daemon thread; the event is set once it has returned (or raised)."""
    finished = threading.Event()

    def run() -> None:
        try:
            target()
        finally:
            finished.set()

    _thread.start_new_thread(run, ())
    return finished
