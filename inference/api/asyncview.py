"""DRF views whose handlers are coroutines, for the endpoints that wait.

DRF is synchronous. `AsyncAPIView` keeps everything DRF gives a view (the
same authentication, permissions, parsers, exception handler and OpenAPI
description) but its handlers are `async def`, so a request that waits for a
job holds no thread while it waits. Database work runs through `run_db` on a
small pool of threads that keep their connections, closing stale or broken
ones after each piece of work the way Django does after each request.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.functional import classproperty
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _db_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.API_DB_THREADS, thread_name_prefix="djinn-api-db")
    return _executor


def _release_connections() -> None:
    """What Django does at the end of a request, without arming a health check query for the next one:
    close a connection that is past CONN_MAX_AGE, left in a transaction, or broken by an error."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        expired = connection.close_at is not None and time.monotonic() >= connection.close_at
        if expired or not connection.get_autocommit():
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


def _with_fresh_connections(func: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(func)
    def run(*args, **kwargs) -> T:
        try:
            return func(*args, **kwargs)
        finally:
            _release_connections()

    return run


async def run_db(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking `func` (ORM, Redis, DNS) on the API's database threads."""
    return await sync_to_async(_with_fresh_connections(func), thread_sensitive=False, executor=_db_executor())(
        *args, **kwargs
    )


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
            return response
        response = self.finalize_response(request, response, *args, **kwargs)
        return _rendered(response)

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
