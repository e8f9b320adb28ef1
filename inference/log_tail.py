"""Live tails of job logs on daphne's event loop: one Redis pub/sub connection for every watcher.

Each watcher used to block on an XREAD of its own job's log: at 200 streams of 30 tokens/s,
daphne sent and parsed 6,000 XREADs a second, more than its one core could. Now every append
also publishes the event on a channel named after the log (streams._APPEND), and one
subscription per event loop receives the events of every job its watchers follow.

The log stays the truth. A watcher takes a pushed event only when it is the next sequence
number it expects; after a gap, an overflowing inbox or a reconnect (when Redis drops
published messages) it reads the log by position again, so it still gets every event once
and in order.

A user's feed of status changes rides the same connection. Each tab's feed used to block on
an XREAD of its own, one Redis connection per open tab: tabs enough would have taken every
connection Redis allows (10,000), and the workers' and the broker's with them. Now a feed
change publishes only that the feed grew, and that wakes the user's tabs to read it by position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import hiredis
from django.conf import settings
from redis.connection import SSLConnection, parse_url

from inference import json_codec, streams
from inference.event_loops import one_per_event_loop
from inference.streams import Event

logger = logging.getLogger(__name__)

# Events an inbox holds for a watcher that is busy sending; past this it drops them and the
# watcher reads the log instead, so a stalled socket never grows the server's memory.
INBOX_MAX = 256
# A quiet connection pings Redis this often, and is given up after three pings unanswered.
PING_SECONDS = 10
# How long a new watcher waits for Redis to confirm its subscription.
SUBSCRIBE_TIMEOUT_SECONDS = 10
RECONNECT_DELAY_SECONDS = 0.5
RECONNECT_MAX_DELAY_SECONDS = 5


class Inbox:
    """Events pushed for one watcher, waiting to be taken."""

    __slots__ = ("_events", "_stale", "_waiter")

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._waiter: asyncio.Future | None = None
        self._stale = False  # something pushed was dropped or missed: the log must be read

    @property
    def stale(self) -> bool:
        """Whether the watcher will read the log before it takes anything: pushes are dropped meanwhile."""
        return self._stale

    def push(self, event: Event) -> None:
        if self._stale:
            return
        if len(self._events) >= INBOX_MAX:
            self.mark_stale()
            return
        self._events.append(event)
        self._wake()

    def mark_stale(self) -> None:
        self._events.clear()
        self._stale = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    async def take(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """The pushed events that follow `after` without a gap, waiting up to `timeout` seconds for some.

        Also says whether the watcher must read the log (from the last event returned): an
        event went missing, or the inbox overflowed. Nothing and False means silence: no new
        event came for `timeout` seconds (events the watcher already read from the log are not news).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self._events and not self._stale and not await self._wait(deadline - loop.time()):
                return [], False
            taken: list[Event] = []
            while self._events:
                event = self._events.popleft()
                if event.seq <= after:
                    continue  # already read from the log
                if event.seq != after + 1:
                    self.mark_stale()
                    break
                taken.append(event)
                after = event.seq
            if taken or self._stale:
                stale, self._stale = self._stale, False
                return taken, stale

    async def _wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a push; False if none came.

        A plain timer answers the waiter False, where `asyncio.timeout` canceled the task and
        raised: every delta of every stream ends a wait, and that context manager's bookkeeping
        made the wait 17 % of daphne's samples while 200 streams ran (8 % now; push, take and
        wait of one event 10.5 -> 8.1 µs).
        """
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _answer, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _answer(waiter: asyncio.Future, answer: bool) -> None:
    if not waiter.done():
        waiter.set_result(answer)


class _Connection(asyncio.Protocol):
    """The subscribed Redis connection: hands every reply to its LogTail."""

    def __init__(self, tail: LogTail) -> None:
        self._tail = tail
        self._replies = hiredis.Reader(encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.last_reply = asyncio.get_running_loop().time()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_reply = asyncio.get_running_loop().time()
        self._replies.feed(data)
        while (reply := self._replies.gets()) is not False:
            self._tail._on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def send(self, *command: str) -> None:
        self.transport.write(hiredis.pack_command(command))


class LogTail:
    """One subscribed connection of an event loop, delivering each followed log's events to its watchers.

    It speaks to Redis itself (a reply is parsed by hiredis and handed on, nothing more):
    redis-py's PubSub spent four times as long on each message, a third of daphne's time.
    """

    def __init__(self) -> None:
        self._inboxes: dict[str, set[Inbox]] = {}
        self._confirmations: dict[str, asyncio.Future] = {}
        self._connection: _Connection | None = None
        self._runner: asyncio.Task | None = None
        self._unreachable = False  # the last try to connect failed

    def follow(self, job_id: Any) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """An inbox receiving the job's new events while the block runs.

        It is subscribed when the block starts: whatever is appended after that reaches the
        inbox, so a watcher that reads the log next misses nothing in between.
        """
        return self._inbox_of(streams.log_key(job_id))

    def follow_user_feed(self, user_id: Any) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """An inbox told (made stale) whenever the user's feed grows, while the block runs; it holds no events.

        Subscribed when the block starts, as `follow`: a tab that reads the feed next misses nothing.
        """
        return self._inbox_of(streams.user_feed_key(user_id))

    @contextlib.asynccontextmanager
    async def _inbox_of(self, channel: str) -> AsyncIterator[Inbox]:
        inbox = Inbox()
        watchers = self._inboxes.setdefault(channel, set())
        watchers.add(inbox)
        try:
            if self._unreachable:  # fail now, as a read of the log would, not after SUBSCRIBE_TIMEOUT
                raise ConnectionError(f"Redis is unreachable: {channel} cannot be followed")
            confirmed = self._confirmations.get(channel)
            if confirmed is None:
                confirmed = self._confirmations[channel] = asyncio.get_running_loop().create_future()
                self._send("SUBSCRIBE", channel)  # without a connection, connecting subscribes it
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await asyncio.shield(confirmed)  # shared by every watcher of the log: never canceled by one
            yield inbox
        finally:
            watchers.discard(inbox)
            if not watchers and self._inboxes.get(channel) is watchers:
                del self._inboxes[channel]
                self._confirmations.pop(channel, None)
                self._send("UNSUBSCRIBE", channel)

    def _send(self, *command: str) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="log-tail")
        elif self._connection is not None and self._connection.transport is not None:
            self._connection.send(*command)

    async def _run(self) -> None:
        """Keep the connection up: connect, subscribe every followed log, ping while idle, reconnect."""
        failures = 0
        while True:
            try:
                self._connection = await self._connect()
                failures, self._unreachable = 0, False
                if self._inboxes:
                    self._connection.send("SUBSCRIBE", *self._inboxes)
                await self._keep_alive(self._connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Said once per outage, not at every try while Redis stays away; a traceback only for
                # what is not an outage (a refused or dropped connection is an OSError).
                log = logger.warning if failures == 0 else logger.debug
                log("job log subscription failed (%r); reconnecting", exc, exc_info=not isinstance(exc, OSError))
                failures += 1
                self._unreachable = self._connection is None  # connecting failed, not a live connection
            finally:
                if self._connection is not None and self._connection.transport is not None:
                    self._connection.transport.abort()
                self._connection = None
            # What Redis published while the connection was down is lost: every watcher reads the log.
            self._all_stale()
            await asyncio.sleep(min(RECONNECT_DELAY_SECONDS * 2 ** max(failures - 1, 0), RECONNECT_MAX_DELAY_SECONDS))

    async def _connect(self) -> _Connection:
        options = parse_url(settings.REDIS_URL)
        loop = asyncio.get_running_loop()
        if "path" in options:
            _, connection = await loop.create_unix_connection(lambda: _Connection(self), options["path"])
        else:
            tls = None
            if options.get("connection_class") is SSLConnection:
                tls = ssl.create_default_context()
                if options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                    tls.check_hostname = False
                    tls.verify_mode = ssl.CERT_NONE
            _, connection = await loop.create_connection(
                lambda: _Connection(self), options.get("host", "localhost"), options.get("port", 6379), ssl=tls
            )
        if options.get("password"):
            credentials = [options["username"]] if options.get("username") else []
            connection.send("AUTH", *credentials, options["password"])
        connection.send("CLIENT", "SETNAME", connection_name())  # for CLIENT LIST
        return connection

    async def _keep_alive(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            done, _ = await asyncio.wait([connection.lost], timeout=PING_SECONDS)
            if done:
                return
            if loop.time() - connection.last_reply > 3 * PING_SECONDS:
                raise ConnectionError(f"Redis did not answer for {3 * PING_SECONDS} s")
            connection.send("PING")

    def _on_reply(self, reply: Any) -> None:
        if isinstance(reply, list):
            kind = reply[0]
            if kind == "message":
                self._deliver(reply[1], reply[2])
            elif kind == "subscribe":
                self._subscribed(reply[1])
        elif isinstance(reply, Exception):  # e.g. a refused AUTH: the connection is of no use
            logger.error("Redis refused the job log subscription: %s", reply)
            if self._connection is not None:
                self._connection.transport.close()

    def _deliver(self, channel: str, payload: str) -> None:
        watchers = self._inboxes.get(channel, ())
        for inbox in watchers:
            if not inbox.stale:
                break
        else:
            return  # a watcher behind by a whole inbox reads the log: no use parsing this for it
        if payload == streams.FEED_GREW:
            for inbox in watchers:
                inbox.mark_stale()
            return
        seq, event_type, attempt, data = payload.split(" ", 3)
        event = Event(seq=int(seq), type=event_type, attempt=int(attempt), data=json_codec.loads(data))
        for inbox in watchers:
            inbox.push(event)

    def _subscribed(self, channel: str) -> None:
        confirmed = self._confirmations.get(channel)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)
            return
        # A subscription confirmed twice was renewed after a reconnect: events may have been lost.
        for inbox in self._inboxes.get(channel, ()):
            inbox.mark_stale()

    def _all_stale(self) -> None:
        for watchers in self._inboxes.values():
            for inbox in watchers:
                inbox.mark_stale()


def connection_name() -> str:
    return f"djinn-log-tail-{os.getpid()}"


@one_per_event_loop
def log_tail() -> LogTail:
    """The running event loop's LogTail."""
    return LogTail()
