"""Each HTTP request's sync code runs on a thread kept from one request to the next, not a new one.

Django's ASGI handler runs every request inside asgiref's ThreadSensitiveContext, so that the
request's sync code (its middleware, a sync view) runs on one thread of its own. Given no
executor, asgiref starts that thread for the request, and another to join it when the
request ends: two threads started and ended per request, a large part of what a bare request
cost daphne (strace: 2 clone3 and some 70 futex calls per GET /healthz). `RequestThreads`
enters the context first, with a single-thread executor from a pool of idle ones; Django's
own context, inside it, then uses that executor (in asgiref the outermost context decides).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext

# Idle request threads kept for the next requests; a burst beyond this starts (and then ends) more.
KEEP_IDLE = 32


class RequestThreads:
    """ASGI middleware: HTTP requests run their thread-sensitive sync code on pooled threads."""

    def __init__(self, app, keep_idle: int = KEEP_IDLE):
        self.app = app
        self.keep_idle = keep_idle
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        executor = self._idle.pop() if self._idle else self._new_executor()
        try:
            async with ThreadSensitiveContext(executor=executor):
                return await self.app(scope, receive, send)
        finally:
            self._release(executor)

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="djinn-request")

    def _release(self, executor: ThreadPoolExecutor) -> None:
        """Back to the pool once its thread has finished everything this request gave it.

        A request canceled while its sync code still runs (the client went away) leaves that
        code running: the next request must not queue behind it.
        """
        if len(self._idle) >= self.keep_idle:
            executor.shutdown(wait=False)
            return
        loop = asyncio.get_running_loop()

        def drained(_) -> None:
            try:
                loop.call_soon_threadsafe(self._idle.append, executor)
            except RuntimeError:  # the loop closed meanwhile (shutting down)
                executor.shutdown(wait=False)

        executor.submit(lambda: None).add_done_callback(drained)
