"""DRF views whose handlers are coroutines, for the endpoints that wait.

DRF is synchronous. `AsyncAPIView` keeps everything DRF gives a view (the
same authentication, permissions, parsers, exception handler and OpenAPI
description) but its handlers are `async def`: a request that waits for a
job waits on the event loop, and its database work runs through `run_db`
(inference/db_threads.py). The request's own thread, where its middleware
ran (config/asgi_handler.py), stays parked until the handler returns: a
waiting request holds one idle thread, none of the database threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.functional import classproperty
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from config.asgi_handler import break_drf_view_cycles
from inference.db_threads import run_db

T = TypeVar("T")


def authenticates_itself(handler):
    """Mark a handler whose first step is `self.run_db_authenticated(...)`: authentication then runs in
    that same database call, one thread hop fewer on a hot path. Nothing may come before that call."""
    handler.authenticates_itself = True
    return handler


class AsyncAPIView(APIView):
    """An APIView whose handlers are `async def`; everything else is DRF's."""

    @classproperty
    def view_is_async(cls) -> bool:
        return True

    async def dispatch(self, request, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if not getattr(handler, "authenticates_itself", False):
                # Authentication and permissions touch the database.
                await run_db(self._initial, request, *args, **kwargs)
            if handler is None:
                raise exceptions.MethodNotAllowed(request.method)
            response = await handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        if isinstance(response, StreamingHttpResponse):
            answer = response
        else:
            response = self.finalize_response(request, response, *args, **kwargs)
            answer = _rendered(response)
        # What goes out is rendered or streams on its own: this view, its Request and its DRF Response
        # are done, and unlinked now they go at once rather than in a pause of the cyclic collector.
        # (For a sync view, config/asgi_handler.py does this when the response closes.)
        break_drf_view_cycles(getattr(response, "renderer_context", None) or {"view": self, "request": request})
        return answer

    async def run_db_authenticated(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Authenticate the request, then run `func`, in one database call (see `authenticates_itself`)."""

        def authenticated() -> T:
            self._initial(self.request, *self.args, **self.kwargs)
            return func(*args, **kwargs)

        return await run_db(authenticated)

    def _initial(self, request, *args, **kwargs) -> None:
        self.initial(request, *args, **kwargs)
        request.user  # noqa: B018  (authenticate now, on this thread, not later on the event loop)

    def options(self, request, *args, **kwargs):
        async def answer():
            return super(AsyncAPIView, self).options(request, *args, **kwargs)

        return answer()


def _rendered(response: Response | HttpResponse) -> HttpResponse:
    """Render here: Django would otherwise render a DRF response on its single sync thread."""
    if not isinstance(response, Response):
        return response
    response.render()
    plain = HttpResponse(response.rendered_content, status=response.status_code, content_type=response["Content-Type"])
    for name, value in response.items():
        plain[name] = value
    return plain
