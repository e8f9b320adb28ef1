"""`GET /api/v1/jobs/{id}/events`: a job's events as Server-Sent Events.

An async view: the event loop writes the stream, and the request's thread stays parked
(idle) until it ends, so daphne serves many at once.
Resumes after `?after=N` or the `Last-Event-ID` a reconnecting client sends.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import authenticate_async
from inference import json_codec, streams
from inference.api.errors import error_body
from inference.db_threads import run_db
from inference.errors import NotFound
from inference.selectors import job_get_for_user
from inference.services.events import EventsReadAhead, resume_point

logger = logging.getLogger(__name__)

RECONNECT_MS = 1000
KEEPALIVE_EVERY = 7  # silent polls (~2 s each) between keepalive comments


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


def event_stream_response(events: EventsReadAhead) -> StreamingHttpResponse:
    """The events, as they come, until `done`."""
    response = StreamingHttpResponse(_frames(events), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


async def _frames(events: EventsReadAhead) -> AsyncIterator[bytes]:
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
        refusal = await _refusal(request, job_id, after)
    except BaseException:
        if events is not None:
            await events.abandon()
        raise
    if refusal is None:
        return event_stream_response(events)
    if events is not None:
        await events.abandon()
    return refusal


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def _refusal(request: HttpRequest, job_id: str, after: int | None) -> HttpResponse | None:
    """The error answering this request, or None when its caller may follow the job."""
    user, problem = await authenticate_async(request)
    if user is None:
        message = "The API key is invalid or revoked." if problem == "invalid_api_key" else "Authentication required."
        return _error(401, problem, message)
    if after is None:
        message = "after and Last-Event-ID must be whole numbers of at most 18 digits."
        return _error(400, "invalid_after", message, "after")
    try:
        await run_db(job_get_for_user, user=user, job_id=job_id)
    except NotFound as exc:
        return _error(404, exc.code, exc.message)
    return None
