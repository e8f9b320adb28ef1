"""Under Django's async handler (daphne) a request's middleware runs on one thread, not a thread per hook."""

import asyncio

import pytest
from asgiref.sync import SyncToAsync
from django.test import AsyncClient


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


HOOKS = (".process_request", ".process_response")


def test_a_sync_view_and_its_middleware_cross_to_a_thread_for_no_hook_of_their_own(thread_crossings):
    response = asyncio.run(AsyncClient().get("/healthz"))

    assert response.status_code == 200
    # Django's own middleware in async mode crossed once for every hook of every middleware.
    assert [crossing for crossing in thread_crossings if crossing.endswith(HOOKS)] == []
    assert thread_crossings == [
        "Signal.asend.<locals>.sync_send",  # request_started's receivers
        "convert_exception_to_response.<locals>.inner",  # the whole middleware chain, on one thread
        "CsrfViewMiddleware.process_view",  # Django's handler sends view hooks on their own
        "healthz",
        "HttpResponseBase.close",  # request_finished's receivers
    ]


@pytest.mark.django_db(transaction=True)  # the view's database work runs on threads of its own
def test_an_async_view_runs_on_the_event_loop_below_the_sync_middleware(thread_crossings):
    response = asyncio.run(AsyncClient().get("/api/v1/jobs"))  # an AsyncAPIView: no key, so a 401

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert [crossing for crossing in thread_crossings if crossing.endswith(HOOKS)] == []
    assert thread_crossings == [  # as above, with no crossing for the view
        "Signal.asend.<locals>.sync_send",
        "convert_exception_to_response.<locals>.inner",
        "CsrfViewMiddleware.process_view",
        "log_response",  # Django logs a 4xx from an async view on a thread
        "HttpResponseBase.close",
    ]
