"""Websockets: one job's event stream, and a user's feed of job status changes.

Both read Redis by position, never through the channel layer, so a slow
socket or a dropped message can never lose or repeat an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.websocket_auth import scope_key_prefix, scope_user
from inference import json_codec, streams
from inference.db_threads import run_db
from inference.errors import NotFound
from inference.log_tail import log_tail
from inference.selectors import job_get_for_user
from inference.services.events import EventsReadAhead, resume_point
from inference.services.jobs import job_cancel
from inference.socket_limits import open_sockets

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_MANY_SOCKETS = 4429  # settings.WEBSOCKETS_PER_USER (daphne sends no close reason to say so)
CLOSE_INTERNAL_ERROR = 4500  # Channels allows only 1000 and 3000-4999
CLOSE_UNAVAILABLE = 4503  # Redis, where the events are, cannot be reached: reconnect with after=N
FEED_READ_AGAIN_SECONDS = 15
# Revocations are stamped by the process that made them: clocks of two hosts may differ this much.
REVOCATION_CLOCK_SLACK_SECONDS = 5
# What a send to a client that has just left raises: daphne passes on autobahn's Disconnected;
# the ASGI spec (2.4) asks servers for an OSError.
CLIENT_GONE = (Disconnected, OSError)


def _after(scope) -> str | None:
    """The socket's `after=` query value, None when it has none."""
    query = scope.get("query_string", b"").decode("latin1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if name == "after":
            return value
    return None


def _parse_after(scope) -> int | None:
    """The `after=N` to resume from (0 when absent), or None when it is not a usable position."""
    value = _after(scope)
    return 0 if value is None else resume_point(value)


# A position in a user's feed, as Redis names stream entries (milliseconds-sequence).
FEED_POSITION = re.compile(r"\d{1,20}-\d{1,20}")
STREAM_ID_PART_MAX = 2**64 - 1  # each half of a Redis stream id


def _parse_feed_position(scope) -> str | None:
    """The `after=<position>` a page rendered with, "" when absent, None when it is no position."""
    value = _after(scope)
    if value is None:
        return ""
    if not FEED_POSITION.fullmatch(value):
        return None
    return value if all(int(part) <= STREAM_ID_PART_MAX for part in value.split("-")) else None


def _caller_and_job(scope, job_id):
    """Who is calling and their job (None if it is not theirs, or missing), in one database call."""
    user = scope_user(scope)
    if not user.is_authenticated:
        return user, None
    try:
        return user, job_get_for_user(user=user, job_id=job_id)
    except NotFound:
        return user, None


class EventLoopConsumer(AsyncWebsocketConsumer):
    """A websocket consumer whose database work runs on db_threads, never on Channels' sync thread.

    Channels closes stale Django connections before every message it dispatches (connect, each
    receive, disconnect) and after a disconnect, each time a hop to its one sync thread: every
    socket's handshake waited there, in line with every other socket's. Connections of that
    thread (the session middleware's) are already closed around each use by
    database_sync_to_async, and db_threads manage their own, so these consumers skip it.
    """

    holder: Any = None  # the user this socket counts against (socket_limits.py), once it is let in

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        await self.disconnect(message["code"])  # no groups: nothing to leave in a channel layer
        if self.holder is not None:
            open_sockets().give_back(self.holder)
            self.holder = None
        raise StopConsumer()

    def take_socket(self, user_id: Any) -> bool:
        """Count this socket against its user, or say False: they hold as many as they may."""
        if not open_sockets().take(user_id):
            return False
        self.holder = user_id
        return True

    async def send_to_client(self, text: str) -> bool:
        """Send `text`, or say False: the client has just left, and its disconnect, on its way, ends this consumer.

        A watcher closing its socket while an event goes out is ordinary (a closed tab), not a failure.
        """
        try:
            await self.send(text_data=text)
        except CLIENT_GONE:
            return False
        return True


class NoSuchSocketConsumer(EventLoopConsumer):
    """Every websocket path that names no socket: closed with 4404, as a missing job is."""

    async def connect(self):
        await self.accept()  # a close before accept is a bare HTTP 403
        await self.close(code=CLOSE_NOT_FOUND)


class JobStreamConsumer(EventLoopConsumer):
    """`/ws/jobs/<id>/?after=N`: every event after N once, in order, then the live tail, then close."""

    follower: asyncio.Task | None = None

    async def connect(self):
        # Accept first: a close before accept is a bare HTTP 403, and clients deserve the reason.
        await self.accept()
        job_id, after = self.scope["url_route"]["kwargs"]["job_id"], _parse_after(self.scope)
        # Followed while the database answers whose job this is; sent only to its owner.
        events = EventsReadAhead(job_id=job_id, after=after) if after is not None else None
        try:
            user, self.job = await run_db(_caller_and_job, self.scope, job_id)
        except BaseException:
            if events is not None:
                await events.abandon()
            raise
        if not user.is_authenticated:
            refusal = CLOSE_UNAUTHENTICATED
        elif self.job is None:  # another user's job and a missing one look the same
            refusal = CLOSE_NOT_FOUND
        elif events is None:
            refusal = CLOSE_BAD_REQUEST
        elif not self.take_socket(user.pk):
            refusal = CLOSE_TOO_MANY_SOCKETS
        else:
            self.follower = asyncio.create_task(self._follow(events))
            return
        if events is not None:
            await events.abandon()
        await self.close(code=refusal)

    async def _follow(self, events: EventsReadAhead) -> None:
        try:
            async for event in events:
                if not await self.send_to_client(json_codec.dumps(event.as_dict())):
                    return
            await self.close(code=1000)
        except asyncio.CancelledError:
            raise
        except streams.REDIS_UNREACHABLE as exc:
            # An outage, not a bug: one line per socket, no traceback (log_tail.py reports the outage itself).
            logger.warning("stream of job %s closed, Redis is unreachable: %s", self.job.id, streams.describe(exc))
            await self.close(code=CLOSE_UNAVAILABLE)
        except Exception:
            logger.exception("stream of job %s failed", self.job.id)
            await self.close(code=CLOSE_INTERNAL_ERROR)
        finally:
            await events.abandon()

    async def receive(self, text_data=None, bytes_data=None):
        if self.follower is None:
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "cancel":
            await run_db(job_cancel, job=self.job)
            return
        await self.send(
            text_data=json.dumps(
                {
                    "type": "reply",
                    "ok": False,
                    "code": "unknown_message",
                    "message": 'Send {"type": "cancel"} to stop the job.',
                }
            )
        )

    async def disconnect(self, code):
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower


class UserJobsConsumer(EventLoopConsumer):
    """`/ws/jobs/?after=<position>`: tells every open tab of a user when any of their jobs changes status.

    A page passes the feed's position when it was rendered (`after`), and hears of every change
    since, those made before its socket was up included. Each message carries its `position`,
    for the next connection to resume from.
    """

    follower: asyncio.Task | None = None

    async def connect(self):
        self.handshake_at = time.time()
        user = await run_db(scope_user, self.scope)
        after = _parse_feed_position(self.scope)
        # Without a position, where the feed stands before the handshake completes: a tab that
        # submits a job as soon as it is connected hears of it, however late the first read goes out.
        if user.is_authenticated and after == "":
            after = await streams.auser_feed_position(user.pk)
        await self.accept()
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if after is None:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        if not self.take_socket(user.pk):
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user_id = user.pk
        self.key_prefix = scope_key_prefix(self.scope)
        self.follower = asyncio.create_task(self._follow(after))

    def _revoked_by(self, change: dict[str, Any]) -> bool:
        """Whether a revocation in the feed takes this socket's credential: one made after its handshake
        (a page resuming from an older position must not be closed by what came before it), for its key
        or for all the user's."""
        recent = change.get("at", 0) >= self.handshake_at - REVOCATION_CLOCK_SLACK_SECONDS
        return recent and change[streams.REVOKED] in (streams.EVERY_CREDENTIAL, self.key_prefix)

    async def _follow(self, last_id: str) -> None:
        try:
            # Woken when the feed grows (log_tail.py), it reads what is new by position. It also reads
            # after FEED_READ_AGAIN_SECONDS of quiet: one short read per tab, against a wake-up lost.
            async with log_tail().follow_user_feed(self.user_id) as grown:
                while True:
                    for entry_id, change in await streams.aread_user_changes(self.user_id, last_id):
                        last_id = entry_id
                        if streams.REVOKED in change:  # inference/revocation.py
                            if self._revoked_by(change):
                                await self.close(code=CLOSE_UNAUTHENTICATED)
                                return
                            continue
                        message = json_codec.dumps({"type": "job", **change, "position": entry_id})
                        if not await self.send_to_client(message):
                            return
                    await grown.take(after=0, timeout=FEED_READ_AGAIN_SECONDS)
        except asyncio.CancelledError:
            raise
        except streams.REDIS_UNREACHABLE as exc:
            logger.warning("job feed of user %s closed, Redis is unreachable: %s", self.user_id, streams.describe(exc))
            await self.close(code=CLOSE_UNAVAILABLE)
        except Exception:
            logger.exception("job feed of user %s failed", self.user_id)
            await self.close(code=CLOSE_INTERNAL_ERROR)

    async def disconnect(self, code):
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower
