"""Counting open websockets: an ASGI wrapper that keeps a per-process count in Redis.

Each daphne process writes its own count under a short-lived key, refreshed
while it runs; /metrics sums the keys. A process that dies stops refreshing
and its key expires, so a crash cannot leave phantom connections behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from django.conf import settings

from inference import streams

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 10
TTL_SECONDS = 30
# A change is written this long after it, with every change since: one write per burst of
# connections, none beside a handshake (a write per connect and close cost daphne as much CPU as
# autobahn's whole upgrade, under the streaming benchmark), and the metric is this stale at most.
GATHER_SECONDS = 0.5


def _process_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:websockets:{socket.gethostname()}:{os.getpid()}"


def websockets_open() -> int:
    """Open websockets over every live daphne process."""
    client = streams.redis_client()
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:websockets:*", count=100))
    return sum(int(value) for value in client.mget(keys) if value) if keys else 0


class WebsocketCounter:
    """Wraps the websocket application: counts a connection from its accept until its consumer returns.

    The count is written to Redis a moment after it changes, never before nor beside a handshake:
    a metric must not add a round trip, or its CPU, to a connection's first event.
    """

    def __init__(self, app):
        self.app = app
        self.open = 0
        self._changed = asyncio.Event()
        self._publisher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self._count(+1)
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                self._count(-1)

    def _count(self, change: int) -> None:
        self.open += change
        self._changed.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._publish_forever())

    async def _publish_forever(self) -> None:
        """Write the count GATHER_SECONDS after it changed (the latest value, once per burst of
        changes), and every REFRESH_SECONDS so that the key outlives its TTL while this process runs."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_SECONDS):
                    await self._changed.wait()
            if self._changed.is_set():
                await asyncio.sleep(GATHER_SECONDS)
            self._changed.clear()
            try:
                await streams.async_redis_client().set(_process_key(), self.open, ex=TTL_SECONDS)
            except Exception:  # a metric must never break a connection
                logger.debug("could not publish the websocket count", exc_info=True)
