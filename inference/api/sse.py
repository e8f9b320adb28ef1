"""`GET /api/v1/jobs/{id}/events`: a job's events as Server-Sent Events.

An async view: the event loop writes the stream, and the request's thread stays parked
(idle) until it ends, so daphne serves many at once.
Resumes after `?after=N` or the `Last-Event-ID` a reconnecting client sends.
Each request counts against its owner's reads per minute, as the other reads do, and an open
stream against the connections they may hold on this server, as a websocket does
(WEBSOCKETS_PER_USER).
"""

from __future__ import annotations

import logging
import math
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import authenticate_async
from accounts.models import User
from accounts.quotas import limits_for_user, request_rate_acquire
from inference import json_codec, streams
from inference.api.errors import error_body
from inference.db_threads import run_db
from inference.errors import NotFound
from inference.selectors import job_get_for_user
from inference.services.events import EventsReadAhead, resume_point
from inference.socket_limits import open_sockets

logger = logging.getLogger(__name__)

RECONNECT_MS = 1000
KEEPALIVE_EVERY = 7  # silent polls (~2 s each) between keepalive comments
STREAMS_FULL_RETRY_AFTER_SECONDS = 5


def _error(status: int, code: str, message: str, param: str | None = None) -> HttpResponse:
    response = JsonResponse(error_body(status, code, message, param), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="djinn"'
    return response


def _resume_point(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return resume_point(raw)


def follow_events(job_id, after: int = 0) -> EventsReadAhead:
    """A job's events after `after` as this stream sends them (with silent polls for keepalives),
    followed from now: start it before the checks that decide whether it is sent."""
    return EventsReadAhead(job_id=job_id, after=after, yield_idle=True)


def event_stream_response(events: EventsReadAhead, on_close: Callable[[], None] | None = None) -> StreamingHttpResponse:
    """The events, as they come, until `done`; `on_close` runs once the stream ends, however it ends."""
    # A response whose client left before it was sent is never iterated, so its `finally` never
    # runs: then `on_close` runs as its events are dropped.
    closing = weakref.finalize(events, on_close) if on_close is not None else None
    response = StreamingHttpResponse(_frames(events, closing), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


async def _frames(events: EventsReadAhead, closing: weakref.finalize | None) -> AsyncIterator[bytes]:
    try:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        silent = 0
        async for event in events:
            if event is None:
                silent += 1
                if silent % KEEPALIVE_EVERY == 0:
                    yield b": keepalive\n\n"
                continue
            payload = json_codec.dumps(event.as_dict())
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {payload}\n\n".encode()
    except streams.REDIS_UNREACHABLE as exc:
        # The stream ends before `done`: the client comes back with Last-Event-ID after `retry`.
        logger.warning("event stream of job %s ended, Redis is unreachable: %s", events.job_id, streams.describe(exc))
        yield b": the event log cannot be reached; reconnect with Last-Event-ID\n\n"
    finally:  # the client went away, or Django stopped iterating
        await events.abandon()
        if closing is not None:
            closing()


@csrf_exempt  # it changes nothing: any other method is a 405, in the API's shape rather than CSRF's HTML page
async def job_events(request: HttpRequest, job_id: str) -> HttpResponse:
    if request.method != "GET":
        response = _error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET"
        return response
    after, job_uuid = _resume_point(request), _uuid_or_none(job_id)
    # Followed while the database answers who is asking and whose job this is; sent only to its owner.
    events = follow_events(job_uuid, after) if after is not None and job_uuid is not None else None
    try:
        user, refusal = await _refusal(request, job_id, after)
    except BaseException:
        if events is not None:
            await events.abandon()
        raise
    if refusal is None:
        held = open_sockets()
        if held.take(user.pk):
            return event_stream_response(events, on_close=lambda: held.give_back(user.pk))
        refusal = _error(
            429,
            "too_many_streams",
            "You hold as many event streams and websockets open on this server as you may; close one and try again.",
        )
        refusal["Retry-After"] = str(STREAMS_FULL_RETRY_AFTER_SECONDS)
    if events is not None:
        await events.abandon()
    return refusal


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def _refusal(request: HttpRequest, job_id: str, after: int | None) -> tuple[User | None, HttpResponse | None]:
    """Who is asking, and the error answering them (None when they may follow the job)."""
    user, problem = await authenticate_async(request)
    if user is None:
        message = "The API key is invalid or revoked." if problem == "invalid_api_key" else "Authentication required."
        return None, _error(401, problem, message)
    try:
        limit, wait = await run_db(_count_read, user)
    except streams.REDIS_UNREACHABLE:
        # Uncounted rather than refused: the stream that follows ends with its comment, and the
        # client comes back (a 5xx would stop a browser's EventSource for good).
        limit, wait = None, None
    if wait is not None:
        response = _error(429, "rate_limited", f"Your plan allows {limit} reads per minute.")
        response["Retry-After"] = str(max(1, math.ceil(wait)))
        return user, response
    if after is None:
        message = "after and Last-Event-ID must be whole numbers of at most 18 digits."
        return user, _error(400, "invalid_after", message, "after")
    try:
        await run_db(job_get_for_user, user=user, job_id=job_id)
    except NotFound as exc:
        return user, _error(404, exc.code, exc.message)
    return user, None


def _count_read(user: User) -> tuple[int | None, float | None]:
    """Count this request among the user's reads, as PlanReadThrottle does: (the limit, None or seconds to wait)."""
    limit = limits_for_user(user=user).requests_per_minute
    return limit, None if limit is None else request_rate_acquire(user_id=user.pk, limit=limit, window="reads")
