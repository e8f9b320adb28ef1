"""HTTP requests run their sync code on request threads kept between requests, one request at a time each."""

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.core.signals import request_started

from config.request_threads import RequestThreads
from tests.support.asgi import http_scope

# Django's handler, as config/asgi.py wraps it. Not imported from there: config.asgi sets
# DATABASE_POOL in this process's environment, which every worker a later test starts inherits.
django_asgi_app = get_asgi_application()


@pytest.fixture
def request_thread_of_each_request():
    """The thread each request's sync code ran on: Django sends request_started from it."""
    threads: list[threading.Thread] = []  # the objects, not their idents: a new thread may reuse an ident
    hooks: list = []

    def started(**kwargs):
        threads.append(threading.current_thread())
        for hook in hooks:
            hook()

    request_started.connect(started, dispatch_uid="test_request_threads")
    yield threads, hooks
    request_started.disconnect(dispatch_uid="test_request_threads")


async def get(application) -> int:
    communicator = ApplicationCommunicator(application, http_scope("/healthz"))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    await communicator.receive_output(10)
    await communicator.wait(10)
    return start["status"]


async def drained() -> None:
    """A request's thread rejoins the pool once it has run a no-op after the request's work."""
    await asyncio.sleep(0.2)


def test_requests_one_after_another_share_one_thread(request_thread_of_each_request):
    threads, _ = request_thread_of_each_request
    application = RequestThreads(django_asgi_app)

    async def five_requests():
        for _ in range(5):
            assert await get(application) == 200
            await drained()

    asyncio.run(five_requests())

    assert len(threads) == 5
    assert len(set(threads)) == 1


def test_requests_at_the_same_time_run_on_threads_of_their_own(request_thread_of_each_request):
    threads, hooks = request_thread_of_each_request
    both_started = threading.Barrier(2, timeout=10)  # broken if the second waits behind the first
    hooks.append(both_started.wait)
    application = RequestThreads(django_asgi_app)

    async def two_at_once():
        return await asyncio.gather(get(application), get(application))

    assert asyncio.run(two_at_once()) == [200, 200]
    assert len(set(threads)) == 2


def test_a_thread_still_busy_after_its_request_ended_is_not_given_to_the_next(request_thread_of_each_request):
    threads, hooks = request_thread_of_each_request
    release = threading.Event()
    hooks.append(lambda: len(threads) == 1 and release.wait(10))  # the first request's sync code hangs
    application = RequestThreads(django_asgi_app)

    async def abandon_one_then_ask_again():
        hanging = ApplicationCommunicator(application, http_scope("/healthz"))
        await hanging.send_input({"type": "http.request", "body": b"", "more_body": False})
        while not threads:
            await asyncio.sleep(0.01)
        hanging.future.cancel()  # the client went away while its sync code still runs
        await asyncio.sleep(0.1)
        status = await get(application)
        release.set()
        return status

    assert asyncio.run(abandon_one_then_ask_again()) == 200
    assert len(threads) == 2
    assert threads[0] is not threads[1]
