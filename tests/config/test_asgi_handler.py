"""Under daphne a request's middleware, its sync view and Django's request_started work cross to its thread once."""

import asyncio
import threading

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import close_old_connections, reset_queries

from config import asgi_handler
from config.request_threads import RequestThreads
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
