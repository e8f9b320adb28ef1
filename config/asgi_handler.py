"""Django's ASGI handler, with each request's sync work on its thread in one crossing.

Under daphne every crossing between the event loop and a thread costs wake-ups: on an idle
machine each took 0.3 ms of a job request's time (measured with per-step timestamps).

- Django's own middleware (MiddlewareMixin) in async mode crossed to a thread for every
  process_request and process_response: a bare GET crossed 16 times.
- Running the whole chain in sync mode on the request's thread left five crossings: one for
  `request_started`'s receivers, one into the chain, one back out of it to the event loop to
  reach Django's async `_get_response_async`, which then crossed again for each view hook
  (CsrfViewMiddleware.process_view) and for a sync view, and one for `request_finished`.

`RequestHandler` builds its chain as Django's WSGI handler does, ending in the sync
`_get_response`: a sync view runs right where the middleware does, and an async view is reached
through async_to_sync, on the event loop as before. The chain runs on the request's thread in
one crossing, which first does Django's own `request_started` work (`reset_queries`,
`close_old_connections`: both act on the calling thread's database connections, the thread the
request then uses). Two crossings remain per request: the chain and `request_finished`.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries

# Django connects these to request_started; this handler runs them inside its one crossing.
DJANGO_REQUEST_STARTED_WORK = (reset_queries, close_old_connections)


def break_request_cycles(request, response) -> None:
    """Once a response has been sent and closed, unlink the request from what links back to it.

    Django's middleware ties each request in reference cycles (`request.user`, a lazy object
    whose function holds the request; `request.auser`; the messages storage), and so does DRF
    (its view and its Request hold each other, and the response holds both). Left to the
    cyclic collector, a few thousand requests' objects were freed in its full passes, which
    stop every stream daphne serves meanwhile; unlinked here, each request's objects go as
    its response does.
    """
    context = getattr(response, "renderer_context", None)  # a DRF response: its view and Request
    if context:
        break_drf_view_cycles(context)
    vars(request).clear()


def break_drf_view_cycles(context: dict) -> None:
    """Unlink a DRF view, its Request and its Response (the `renderer_context` DRF gives each) from each other.

    The view holds its Request and a bound method of its own (`head`, set from `get`), the
    Request its parser context that names it, and the Response a renderer context that names it.
    """
    for part in (context.get("view"), context.get("request")):
        if part is not None:
            vars(part).clear()
    context.clear()


class RequestHandler(ASGIHandler):
    """Django's ASGIHandler, middleware and sync views on the request's thread in one crossing.

    Building it takes Django's own receivers off `request_started` for the process (this handler
    does their work itself); receivers connected by anyone else are still sent to as Django does.
    """

    def __init__(self) -> None:
        super().__init__()
        for receiver in DJANGO_REQUEST_STARTED_WORK:
            signals.request_started.disconnect(receiver)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain = self._middleware_chain

        def on_request_thread(request):
            for work in DJANGO_REQUEST_STARTED_WORK:
                work()
            response = chain(request)
            response._resource_closers.append(lambda: break_request_cycles(request, response))
            return response

        self._middleware_chain = sync_to_async(on_request_thread, thread_sensitive=True)

    async def listen_for_disconnect(self, receive) -> None:
        """Return when the client goes, where Django raises RequestAborted.

        daphne says `http.disconnect` as each response ends, so Django's listener raised for every
        request: `handle()` re-raised the exception to ignore it, and its traceback held handle's
        frame, which held the task that held the exception. Each request's objects (~110: the
        request, its response, its session...) were left in a reference cycle for the cyclic
        collector, whose full passes then freed 25,000 of them at once every few seconds under
        load, a 40-80 ms pause in every stream daphne served. Django 5.2's `handle()` treats a
        listener that returned exactly as one that raised RequestAborted: either way the request
        still running is canceled.
        """
        message = await receive()
        assert message["type"] == "http.disconnect", f"Invalid ASGI message after request body: {message['type']}"
