"""The per-job event log in Redis: the truth every watcher reads.

Each job has a Redis Stream whose entry ids are `0-<seq>`, so a sequence
number is also a position to resume from. Appends go through one Lua script
that fences writers by attempt: once attempt N+1 has written, anything a
stale attempt N still sends is refused, so two attempts never interleave.
The script also publishes each event on a channel named after the log, for
the live tails of watchers on daphne (log_tail.py).

A Redis that restarts empty (or fails over to a replica that lagged) takes
events watchers have already read, and numbering would start again below
their positions: what came next would reach them as the wrong part of the
text, or never. So a writer says how far it knows the log reached (`floor`),
and the script refuses an append to a log that is behind it (`LogLost`): the
writer then re-seeds the log above every position a watcher can hold, with a
restart and the whole text so far (`reseed`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import hiredis
import redis
import redis.asyncio
from django.conf import settings

from inference import json_codec
from inference.background import start_daemon
from inference.event_loops import one_per_event_loop

EVENT_TYPES = ("status", "delta", "progress", "error", "done")

_APPEND_STEPS = """
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local attempt = tonumber(ARGV[1])
if attempt < fence then return false end
redis.call('SET', KEYS[2], attempt, 'EX', ARGV[5])
local seq = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '0-' .. seq, 'type', ARGV[2], 'attempt', ARGV[1], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', KEYS[1], seq .. ' ' .. ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[3])
"""
# ARGV[6], the writer's floor: refused (-1, nothing written) when the log is behind it, unless ARGV[7]
# says the append re-seeds the log: its numbering then goes on from the floor.
_APPEND = (
    """
local floor = tonumber(ARGV[6])
if floor > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') < floor then
  if ARGV[7] ~= 'reseed' then return -1 end
  redis.call('SET', KEYS[3], floor)
end
"""
    + _APPEND_STEPS
    + """
if KEYS[4] then return {seq, redis.call('EXISTS', KEYS[4])} end
return seq
"""
)
# The same append, only as the log's first event, with its owner's tabs told (KEYS[4] their feed; ARGV[6],
# the floor, goes unread: a first event has none).
_APPEND_FIRST = (
    """
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
"""
    + _APPEND_STEPS
    + """
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'data', ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[5])
return seq
"""
)
LOST = -1  # the append script's reply for a log behind its writer's floor

# A log lost with Redis (it keeps nothing on disk) starts again above every position a watcher can
# hold, even when the worker that knew its position died with it: PostgreSQL keeps a position each
# job's log may reach (Job.log_seq_reserved). A worker reserves RESERVED_EVENTS ahead with its
# first token's mark, and again, in a write of its own, before its appends could pass that by more
# than UNRESERVED_EVENTS; a lost log starts again RESTART_GAP above it: room for those and for the
# few statuses that other writers (the API, the reaper) append.
RESERVED_EVENTS = 1000
UNRESERVED_EVENTS = 50
RESTART_GAP = 100


def restart_floor(reserved: int) -> int:
    """Where a lost log starts again, after the job's reserved position."""
    return reserved + RESTART_GAP


MAX_CONNECTIONS = 10_000
# Connections of daphne's client, per event loop: its commands are short, never blocking.
ASYNC_MAX_CONNECTIONS = 16
# redis-py times reads out after 5 s by default; watchers block on XREAD for up to 15 s.
SOCKET_TIMEOUT_SECONDS = 60


# What a command raises when Redis is down or does not answer in time: a watcher can only be told to come back.
# (log_tail.py raises the builtin ConnectionError to a watcher that subscribes while Redis is away.)
REDIS_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError)


def describe(exc: BaseException) -> str:
    """An error as a log line says it ("ConnectionError: Error 111 connecting to ..."), where
    redis-py's own repr says only "network:ConnectionError"."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Superseded(Exception):
    """A newer attempt owns this job's log; the writer must stop."""


class LogLost(Exception):
    """The job's log is behind what its writer wrote (Redis restarted empty): it must be re-seeded."""


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "attempt": self.attempt, "data": self.data}


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """One connection pool per process, shared by every writer and reader."""
    # redis-py caps a pool at 100 connections; a threaded worker runs more jobs than that at once.
    return redis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        health_check_interval=30,
        max_connections=MAX_CONNECTIONS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=1)
def _append_script():
    return redis_client().register_script(_APPEND)


@lru_cache(maxsize=1)
def _append_first_script():
    return redis_client().register_script(_APPEND_FIRST)


def _keys(job_id: Any, *parts: str) -> list[str]:
    """A job's keys for `parts`, its id made a string once (a delta's append names four: 2 µs a UUID)."""
    job = f"{settings.REDIS_KEY_PREFIX}:job:{job_id}:"
    return [job + part for part in parts]


def _key(job_id: Any, part: str) -> str:
    return _keys(job_id, part)[0]


def log_key(job_id: Any) -> str:
    return _key(job_id, "log")


def _append_call(
    job_id: Any, attempt: int, event_type: str, data: dict[str, Any], floor: int, *more_keys: str, reseeding=False
):
    """The append script's keys (the job's log, fence and sequence, then its `more_keys`) and arguments."""
    keys = _keys(job_id, "log", "fence", "seq", *more_keys)
    args = [
        attempt,
        event_type,
        json_codec.dumps(data),
        settings.EVENT_LOG_MAX_EVENTS,
        settings.EVENT_LOG_TTL_SECONDS,
        floor,
    ]
    if reseeding:
        args.append("reseed")
    return keys, args


def _append(
    job_id: Any, attempt: int, event_type: str, data: dict[str, Any], floor: int = 0, client=None, reseeding=False
) -> Any:
    """Run the append script (on `client`, a pipeline, if given: the reply then comes from `execute(client)`)."""
    keys, args = _append_call(job_id, attempt, event_type, data, floor, reseeding=reseeding)
    if client is not None:
        # By its SHA alone: a Script handed to a pipeline makes redis-py ask SCRIPT EXISTS before
        # every execute, a round trip more per delta. `execute` runs again any append that Redis
        # answers NOSCRIPT (restarted, it forgot the script).
        appends = client.__dict__.setdefault("djinn_appends", {})
        appends[len(client.command_stack)] = (keys, args)
        client.evalsha(_append_script().sha, len(keys), *keys, *args)
        return None
    return _checked(job_id, attempt, _append_script()(keys=keys, args=args))  # loads the script itself on NOSCRIPT


def _checked(job_id: Any, attempt: int, reply: Any) -> Any:
    """An append's reply, or its refusal raised."""
    if isinstance(reply, Exception):
        raise reply
    if reply is None:
        raise Superseded(f"job {job_id}: attempt {attempt} was superseded")
    if reply == LOST:
        raise LogLost(f"job {job_id}: the event log lost events attempt {attempt} wrote")
    return reply


def _rerun_forgotten(replies: list[Any], appends: dict[int, tuple[list[str], list[Any]]]) -> None:
    """Run again, with the script, each of `appends` (by reply index) that Redis answered NOSCRIPT."""
    for index, (keys, args) in appends.items():
        if isinstance(replies[index], redis.exceptions.NoScriptError):
            try:
                replies[index] = _append_script()(keys=keys, args=args)
            except Exception as exc:
                replies[index] = exc


def execute(pipe) -> list[Any]:
    """Run a pipeline holding appends; replies in order, a failed command's exception in its place."""
    replies = pipe.execute(raise_on_error=False)
    _rerun_forgotten(replies, pipe.__dict__.pop("djinn_appends", {}))
    return replies


def append_event(job_id: Any, attempt: int, event_type: str, data: dict[str, Any], floor: int = 0) -> int:
    """Append one event; returns its sequence number, or raises Superseded or LogLost.

    `floor`: the highest sequence number the caller knows the log reached (0: it knows of none).
    """
    return int(_append(job_id, attempt, event_type, data, floor))


def reseed(job_id: Any, attempt: int, text: str, floor: int, status: str = "running") -> int:
    """Start the log again after `floor` with a restart (a `status` event), then `text`: all that watchers
    should show. Returns the last sequence number. Watchers anywhere at or before `floor` get the restart
    and the text."""
    restart = {"status": status, "attempt": attempt, "restart": True}
    pipe = redis_client().pipeline(transaction=False)
    _append(job_id, attempt, "status", restart, floor, client=pipe, reseeding=True)
    if text:
        _append(job_id, attempt, "delta", {"text": text}, floor, client=pipe)
    return int([_checked(job_id, attempt, reply) for reply in execute(pipe)][-1])


# One event for `append_all_reporting_cancel`: (job id, attempt, event type, data, the writer's floor).
Append = tuple[Any, int, str, dict[str, Any], int]


def append_all_reporting_cancel(appends: Sequence[Append]) -> list[Any]:
    """Append events of any jobs in one round trip, in order. Each reply, read with `appended_reply`,
    says whether its job was asked to stop; an append that failed has its exception in its place
    (all of them when Redis is away).

    The reply tells a streaming job of a cancel with its next delta, often before its process's
    next poll (cancel_watch.py). The commands are packed by hiredis and written to one pooled
    connection, the replies read straight back: a redis-py pipeline (its command stack, its packing
    and parsing) cost 1.6-2x the CPU per append (96 / 23 / 14 µs against 58 / 14 / 7 in batches of
    1 / 6 / 50), the largest part of a streaming worker's time per token. Redis's own error replies
    stay per append, as in a pipeline; an append answered NOSCRIPT (a restarted Redis forgot the
    script) is run again with the script.
    """
    sha = _append_script().sha
    commands = [_append_call(*append, "cancel") for append in appends]
    pool = redis_client().connection_pool
    connection = pool.get_connection()
    try:
        packed = b"".join(hiredis.pack_command(("EVALSHA", sha, len(keys), *keys, *args)) for keys, args in commands)
        connection.send_packed_command([packed])
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
    except BaseException:
        connection.disconnect()  # replies may still be on their way: never hand this connection on
        raise
    finally:
        pool.release(connection)
    _rerun_forgotten(replies, dict(enumerate(commands)))
    return replies


def appended_reply(job_id: Any, attempt: int, reply: Any) -> tuple[int, bool]:
    """The event's sequence number and whether its job was asked to stop, from a reply of
    `append_all_reporting_cancel`; raises its failure (Superseded, LogLost, a Redis error)."""
    seq, canceled = _checked(job_id, attempt, reply)
    return int(seq), bool(canceled)


def _parse(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(
        seq=int(entry_id.partition("-")[2]),
        type=fields["type"],
        attempt=int(fields["attempt"]),
        data=json_codec.loads(fields["data"]),
    )


def read_events(job_id: Any, after: int = 0, count: int | None = None) -> list[Event]:
    """Events with seq > after, oldest first, from the log as it is now."""
    entries = redis_client().xrange(log_key(job_id), min=f"0-{after + 1}", max="+", count=count)
    return [_parse(entry_id, fields) for entry_id, fields in entries]


def wait_events(job_id: Any, after: int, timeout_ms: int) -> list[Event]:
    """Events with seq > after, waiting up to timeout_ms for the first one."""
    reply = redis_client().xread({log_key(job_id): f"0-{after}"}, block=timeout_ms)
    if not reply:
        return []
    return [_parse(entry_id, fields) for entry_id, fields in reply[0][1]]


class _CancellableRedis(redis.asyncio.Redis):
    """redis.asyncio with each command timed out as a whole, not its socket.

    Given a socket_timeout, redis-py wraps every write in asyncio.wait_for, which on Python
    3.11 swallows a cancel that arrives just as the write completes (python/cpython#86296, fixed
    in 3.12): the canceled follower of a closed websocket ran on, and the socket's disconnect
    waited for it, until the job ended. asyncio.timeout passes every cancel on.
    """

    async def execute_command(self, *args, **options):
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT_SECONDS):
                return await super().execute_command(*args, **options)
        except TimeoutError as exc:  # asyncio's; callers expect redis-py's, as its socket timeout raised
            message = f"Redis did not answer {args[0]} in {SOCKET_TIMEOUT_SECONDS} s"
            raise redis.exceptions.TimeoutError(message) from exc


@one_per_event_loop
def async_redis_client() -> redis.asyncio.Redis:
    """The running event loop's client, for daphne's readers."""
    # No command blocks (watchers and feeds wait on one shared subscription, log_tail.py), so a few
    # connections serve every socket; a burst waits its turn for one. An open pool kept as many
    # connections as commands had ever been in flight at once: one per tab woken by its feed.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        health_check_interval=30,
        max_connections=ASYNC_MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT_SECONDS,  # for a free connection; each command is timed out as a whole too
        socket_timeout=None,  # redis-py's default is 5 s; each command is timed out instead
    )
    return _CancellableRedis(connection_pool=pool)


async def aread_events(job_id: Any, after: int = 0, count: int | None = None) -> list[Event]:
    entries = await async_redis_client().xrange(log_key(job_id), min=f"0-{after + 1}", max="+", count=count)
    return [_parse(entry_id, fields) for entry_id, fields in entries]


def newest_event(job_id: Any) -> Event | None:
    """The last event of the job's log; None when it has no log (never written, expired, or lost)."""
    entries = redis_client().xrevrange(log_key(job_id), count=1)
    return _parse(*entries[0]) if entries else None


async def anewest_event(job_id: Any) -> Event | None:
    entries = await async_redis_client().xrevrange(log_key(job_id), count=1)
    return _parse(*entries[0]) if entries else None


def user_feed_key(user_id: Any) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:user:{user_id}:jobs"


USER_FEED_MAX = 1000
# What a feed's channel says: only that the feed grew. The news itself is read from the feed.
FEED_GREW = "grew"


def notify_user(user_id: Any, change: dict[str, Any]) -> None:
    """Tell a user's open tabs that one of their jobs changed status."""
    pipe = redis_client().pipeline(transaction=False)
    _notify_user(pipe, user_id, change)
    pipe.execute()


def _notify_user(pipe, user_id: Any, change: dict[str, Any]) -> None:
    key = user_feed_key(user_id)
    pipe.xadd(key, {"data": json_codec.dumps(change)}, maxlen=USER_FEED_MAX, approximate=True)
    pipe.expire(key, settings.EVENT_LOG_TTL_SECONDS)
    pipe.publish(key, FEED_GREW)  # wakes the user's tabs, which read the feed by position (log_tail.py)


# A feed entry saying a credential of the user was revoked: its key prefix, or this for all of them,
# and when (`at`, epoch seconds).
REVOKED = "revoked"
EVERY_CREDENTIAL = "*"


def announce_access_revoked(user_id: Any, key_prefix: str | None) -> None:
    """Tell the user's open feeds that a key (None: every credential) was revoked: those it opened close."""
    pipe = redis_client().pipeline(transaction=False)
    _notify_user(pipe, user_id, {REVOKED: key_prefix or EVERY_CREDENTIAL, "at": time.time()})
    pipe.execute()


def append_event_notifying(
    job_id: Any,
    attempt: int,
    event_type: str,
    data: dict[str, Any],
    *,
    owner_id: Any,
    change: dict[str, Any],
    floor: int = 0,
) -> None:
    """Append a status change to the job's log and tell its owner's tabs, in one round trip.

    Raises Superseded or LogLost (the owner is told anyway: the status is the database's, not the log's).
    """
    pipe = redis_client().pipeline(transaction=False)
    _append(job_id, attempt, event_type, data, floor, client=pipe)
    _notify_user(pipe, owner_id, change)
    appended, *notified = execute(pipe)
    for reply in notified:
        if isinstance(reply, Exception):
            raise reply
    _checked(job_id, attempt, appended)


def append_first_notifying(
    job_id: Any, attempt: int, event_type: str, data: dict[str, Any], *, owner_id: Any, change: dict[str, Any]
) -> bool:
    """Append an event and tell its owner's tabs, in one round trip, only if it is the log's first event.

    False, and nothing written, when something came first: a job's `queued` is announced after its
    message is sent, and a worker that started it meanwhile has already said `running`.
    """
    keys, args = _append_call(job_id, attempt, event_type, data, 0)
    keys.append(user_feed_key(owner_id))
    args += [USER_FEED_MAX, json_codec.dumps(change)]
    return _append_first_script()(keys=keys, args=args) is not None


def user_feed_position(user_id: Any) -> str:
    """Where a user's feed is now: the id after which every later change comes ("0-0" when it is empty)."""
    newest = redis_client().xrevrange(user_feed_key(user_id), count=1)
    return newest[0][0] if newest else "0-0"


async def auser_feed_position(user_id: Any) -> str:
    """user_feed_position, for the event loop."""
    newest = await async_redis_client().xrevrange(user_feed_key(user_id), count=1)
    return newest[0][0] if newest else "0-0"


async def aread_user_changes(user_id: Any, after_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A user's job status changes after stream id `after_id`, without waiting for any."""
    reply = await async_redis_client().xread({user_feed_key(user_id): after_id})
    if not reply:
        return []
    return [(entry_id, json_codec.loads(fields["data"])) for entry_id, fields in reply[0][1]]


def request_cancel(job_id: Any) -> None:
    redis_client().set(_key(job_id, "cancel"), "1", ex=settings.EVENT_LOG_TTL_SECONDS)


def cancel_requested(job_id: Any) -> bool:
    return bool(redis_client().exists(_key(job_id, "cancel")))


def canceled_among(job_ids: list[Any]) -> set[str]:
    """Which of these jobs were asked to stop, in one round trip."""
    if not job_ids:
        return set()
    flags = redis_client().mget([_key(job_id, "cancel") for job_id in job_ids])
    return {str(job_id) for job_id, flag in zip(job_ids, flags, strict=True) if flag is not None}


class DeltaBuffer:
    """Coalesces tokens into deltas: at most one per STREAM_COALESCE_MS, or STREAM_COALESCE_TOKENS.

    The first token goes out at once (time to first token matters most), and so does any token
    after which no other is expected before the window closes: a stream slower than the window
    sends every token as it comes, since holding one would only delay it. The next gap is
    expected to be the last one. `flush()` must be called at the end to send the rest.
    """

    def __init__(self, max_tokens: int | None = None, max_delay_ms: int | None = None, clock=time.monotonic):
        self.max_tokens = max_tokens or settings.STREAM_COALESCE_TOKENS
        self.max_delay = (settings.STREAM_COALESCE_MS if max_delay_ms is None else max_delay_ms) / 1000
        self._clock = clock
        self._pending: list[str] = []
        self._last_flush = float("-inf")
        self._last_token = float("-inf")

    def add(self, token: str) -> str | None:
        """Buffer a token; returns the text to send when it is time to send."""
        self._pending.append(token)
        now = self._clock()
        expected_gap, self._last_token = now - self._last_token, now
        if len(self._pending) >= self.max_tokens or now + expected_gap >= self._last_flush + self.max_delay:
            return self.flush()
        return None

    def flush(self) -> str | None:
        if not self._pending:
            return None
        text = "".join(self._pending)
        self._pending.clear()
        self._last_flush = self._clock()
        return text

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    def due_in(self) -> float:
        """Seconds until the held tokens are due, however long the next one takes."""
        return self._last_flush + self.max_delay - self._clock()


class DeltaSender:
    """A DeltaBuffer whose held tokens go out on time even when the backend stalls.

    `add` and `close` run on the job's thread; a small thread sends tokens the buffer is
    holding once they are due, so a remote model that pauses after a burst never keeps
    its last tokens from watchers. Sends never overlap, so deltas keep their order. An
    exception from `send` on that thread is raised on the job's thread at its next call.
    """

    def __init__(self, send, buffer: DeltaBuffer | None = None):
        self._send = send
        self._buffer = buffer or DeltaBuffer()
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._timed_wait = False  # the sending thread sleeps until a due time, not until told
        self._sending = start_daemon(self._send_when_due)

    def add(self, token: str) -> None:
        with self._changed:
            self._raise_error()
            text = self._buffer.add(token)
            if text:
                self._send(text)
            elif not self._timed_wait:  # a thread already waiting for a due time wakes by itself
                self._changed.notify()

    def send_now(self, send_other) -> None:
        """Send what is held, then run `send_other` (another event) in order with the deltas."""
        with self._changed:
            self._raise_error()
            text = self._buffer.flush()
            if text:
                self._send(text)
            send_other()

    def close(self, *, flush: bool = True) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
            self._raise_error()
            text = self._buffer.flush() if flush else None
            if text:
                self._send(text)
        self._sending.wait(timeout=5)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _send_when_due(self) -> None:
        with self._changed:
            sent_on_time = False
            while not self._closed:
                if not self._buffer.holding or self._error is not None:
                    wait = self._buffer.due_in()
                    if sent_on_time and self._error is None and wait > 0:
                        # Having just sent what a fast stream held, expect more by the next due time
                        # and wake then, unasked: the job's thread need not wake this one per window.
                        sent_on_time = False
                        self._timed_wait = True
                        self._changed.wait(wait)
                        continue
                    self._timed_wait = False
                    self._changed.wait()
                    continue
                wait = self._buffer.due_in()
                if wait > 0:
                    # A fast stream keeps this thread in timed waits: one wake-up per window, not per token.
                    self._timed_wait = True
                    self._changed.wait(wait)
                    continue
                self._timed_wait = False
                text = self._buffer.flush()
                try:
                    self._send(text)
                except BaseException as exc:  # the job's thread raises it
                    self._error = exc
                sent_on_time = True
