"""A small pool of database threads for async code: views, consumers and stream followers.

Django's `sync_to_async` runs ORM calls on one thread per process (thread-sensitive
mode): under daphne every sync view, websocket handshake and stream poll would queue
on it. `run_db` runs blocking work on a few threads that keep their connections,
closing old or broken ones after each piece of work the way Django does after each
request.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_threads = 0


def _db_executor() -> ThreadPoolExecutor:
    global _executor, _executor_threads
    if _executor is None:
        _executor_threads = settings.API_DB_THREADS
        _executor = ThreadPoolExecutor(max_workers=_executor_threads, thread_name_prefix="djinn-db")
    return _executor


def shutdown() -> None:
    """Close every database thread's connections and stop the threads (the tests do, before they
    drop their database: PostgreSQL refuses while a connection is open)."""
    global _executor
    executor, _executor = _executor, None
    if executor is None:
        return
    # One task per thread: each waits until every thread holds one, then closes its own connections.
    everyone = threading.Barrier(_executor_threads)

    def close_this_threads_connections() -> None:
        everyone.wait(timeout=5)
        connections.close_all()

    for _ in range(_executor_threads):
        executor.submit(close_this_threads_connections)
    executor.shutdown(wait=True)


# With the pool (config/asgi.py) a database thread keeps its connection between pieces of work
# for up to this long: handing it back after each piece cost a health-check round trip at the
# next checkout, a quarter of daphne's time while 200 watchers checked on their jobs.
KEEP_POOLED_CONNECTION_SECONDS = 30.0
# A kept connection idle for longer is checked before use: the server may have restarted meanwhile.
CHECK_IDLE_CONNECTION_SECONDS = 5.0


def _stamps(connection) -> dict[str, Any]:
    """When the wrapper's current database connection was opened and last used, kept on the wrapper:
    a driver's connection may take no attributes (sqlite3's does not), and a new one starts afresh."""
    stamps = getattr(connection, "djinn_stamps", None)
    if stamps is None or stamps["connection"] is not connection.connection:
        stamps = connection.djinn_stamps = {"connection": connection.connection}
    return stamps


def _check_idle_connections() -> None:
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        last_used = _stamps(connection).get("last_used")
        if last_used is not None and now - last_used > CHECK_IDLE_CONNECTION_SECONDS and not connection.is_usable():
            connection.close()


def _release_connections() -> None:
    """What Django does at the end of a request, without arming a health check query for the next one:
    close a connection that is past its age, left in a transaction, or broken by an error."""
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if "pool" in connection.settings_dict.get("OPTIONS", {}):
            opened_at = _stamps(connection).setdefault("opened_at", now)
            expired = now - opened_at >= KEEP_POOLED_CONNECTION_SECONDS
        else:
            expired = connection.close_at is not None and now >= connection.close_at
        if expired or not connection.get_autocommit():
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
        if connection.connection is not None:
            _stamps(connection)["last_used"] = now


def _with_fresh_connections(func: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(func)
    def run(*args, **kwargs) -> T:
        _check_idle_connections()
        try:
            return func(*args, **kwargs)
        finally:
            _release_connections()

    return run


async def run_db(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking `func` (ORM, Redis, DNS) on the database threads, in a copy of the caller's context.

    A plain executor call, not asgiref's `sync_to_async`: that one's bookkeeping (context copied
    back, a shielded future, thread-locals for a nested `async_to_sync`) cost a tenth of every job
    request's time, and nothing run here needs it. A caller canceled meanwhile stops waiting; the
    work itself runs to its end on its thread.
    """
    call = functools.partial(contextvars.copy_context().run, _with_fresh_connections(func), *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_db_executor(), call)
