"""Under daphne a request's middleware, its sync view and Django's request_started work cross to its thread once,
and a request's objects go with it, not in a later pass of the cyclic garbage collector."""

import asyncio
import gc
import json
import threading
from collections.abc import Callable

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import close_old_connections, reset_queries

from accounts.models import Plan
from config import asgi_handler
from config.request_threads import RequestThreads
from inference.models import Job
from tests.support.asgi import http_scope

ON_REQUEST_THREAD = "RequestHandler.load_middleware.<locals>.on_request_thread"


@pytest.fixture
def handler():
    """The handler as config/asgi.py builds it (not imported from there: that sets DATABASE_POOL for
    every worker a later test starts); Django's request_started receivers are given back afterwards."""
    yield asgi_handler.RequestHandler()
    for receiver in asgi_handler.DJANGO_REQUEST_STARTED_WORK:
        signals.request_started.connect(receiver)


@pytest.fixture
def thread_crossings(monkeypatch):
    """Counts every crossing from the event loop to a thread (asgiref's sync_to_async)."""
    crossings = []
    call = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        crossings.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return crossings


async def get(application, path: str) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(application, http_scope(path))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    await communicator.wait(10)
    return start["status"], body["body"]


def test_a_sync_view_runs_with_its_middleware_in_one_crossing(handler, thread_crossings):
    status, _ = asyncio.run(get(handler, "/healthz"))

    assert status == 200
    assert thread_crossings == [
        ON_REQUEST_THREAD,  # request_started's work, every middleware, CSRF's view hook, the view
        "HttpResponseBase.close",  # request_finished's receivers
    ]


@pytest.mark.django_db(transaction=True)  # the view's database work runs on threads of its own
def test_an_async_view_still_runs_on_the_event_loop_below_the_sync_middleware(handler, thread_crossings):
    status, body = asyncio.run(get(handler, "/api/v1/jobs"))  # an AsyncAPIView: no key, so a 401

    assert status == 401
    assert b'"not_authenticated"' in body
    assert thread_crossings == [
        ON_REQUEST_THREAD,
        "log_response",  # Django logs a 4xx on a thread of its own
        "HttpResponseBase.close",
    ]


def test_djangos_request_started_work_runs_on_the_requests_own_thread(handler, monkeypatch):
    ran_on = []

    def on_this_thread(work):
        def record():
            ran_on.append((work.__name__, threading.current_thread().name))
            work()

        return record

    monkeypatch.setattr(
        asgi_handler,
        "DJANGO_REQUEST_STARTED_WORK",
        tuple(on_this_thread(work) for work in asgi_handler.DJANGO_REQUEST_STARTED_WORK),
    )
    # Only the handler does that work now: request_started has no Django receiver left to cross for.
    sync_receivers, _ = signals.request_started._live_receivers(sender=None)
    assert not {reset_queries, close_old_connections} & set(sync_receivers)

    status, _ = asyncio.run(get(RequestThreads(handler), "/healthz"))

    assert status == 200
    assert [name for name, _ in ran_on] == ["reset_queries", "close_old_connections"]
    assert {thread.split("_")[0] for _, thread in ran_on} == {"djinn-request"}


async def get_as_daphne_does(application, path: str, times: int) -> list[int]:
    """GETs of `path`, each followed by `http.disconnect` once its response has ended, as daphne sends it."""
    return await request_as_daphne_does(application, http_scope(path), b"", times)


async def request_as_daphne_does(application, scope: dict, body: bytes, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await communicator.receive_output(10)
        await communicator.receive_output(10)
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(10)
        statuses.append(start["status"])
    return statuses


def left_in_cycles(work: Callable[[], object]) -> int:
    """How many objects `work` left in reference cycles, for the cyclic garbage collector to free."""
    gc.collect()
    gc.disable()
    try:
        work()
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "status", "left_per_request"),
    [
        ("/healthz", 200, 0),  # 96 objects each, before: Django's disconnect listener and middleware
        ("/api/v1/models", 401, 0),  # DRF's view, Request and response hold each other: 74 before
        ("/api/v1/jobs", 401, 0),  # the same in an AsyncAPIView, which renders its response itself: 26 before
        # Sessions, messages and authentication are unlinked; a form and its bound fields hold each
        # other, Django's own, left to the collector (167 before).
        ("/login/", 200, 50),
    ],
)
def test_a_requests_objects_are_freed_with_it_not_left_to_the_cyclic_collector(handler, path, status, left_per_request):
    # Left to it, thousands of requests' objects were freed at once in its full passes: a pause of
    # 40-80 ms in every stream daphne served meanwhile (bench/streaming.py's 200 paced streams).
    assert asyncio.run(get_as_daphne_does(handler, path, 3)) == [status] * 3  # caches filled
    left = left_in_cycles(lambda: asyncio.run(get_as_daphne_does(handler, path, 30)))

    assert left <= 30 * left_per_request, f"{left} objects in reference cycles after 30 requests"


@pytest.mark.django_db(transaction=True)
def test_a_submitted_jobs_objects_are_freed_with_it(handler, owner, owner_key, echo_model):
    # Its DRF input serializer and its fields held each other, as did its view and DRF Request: 78 objects a job before.
    owner.plan = Plan.objects.create(name="roomy", concurrent_jobs=100, requests_per_minute=100)
    owner.save(update_fields=["plan"])
    body = json.dumps({"model": "echo", "input": {"messages": [{"role": "user", "content": "hi"}]}}).encode()
    scope = {
        **http_scope("/api/v1/jobs"),
        "method": "POST",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {owner_key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    assert asyncio.run(request_as_daphne_does(handler, scope, body, 3)) == [202] * 3
    left = left_in_cycles(lambda: asyncio.run(request_as_daphne_does(handler, scope, body, 30)))

    assert Job.objects.filter(owner=owner).count() == 33
    assert left == 0, f"{left} objects in reference cycles after 30 jobs"
