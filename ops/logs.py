"""Structured logs: a JSON formatter, and the job and request ids carried on every record.

The ids live in context variables. A web request gets a request id (the
client's X-Request-ID or a new one); storing a job sets the job id; the
request id travels to the worker in the Celery message's headers, and the
worker sets both ids for the length of each task. Nothing here imports
Django models: logging is configured before the apps load.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("djinn_job_id", default=None)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("djinn_request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Attributes every LogRecord has; anything else was passed in `extra` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "job_id", "request_id"}


class ContextFilter(logging.Filter):
    """Puts the current job id and request id on every record (None when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id_var.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "request_id": getattr(record, "request_id", None),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def new_request_id(given: str | None = None) -> str:
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request's logs and echoes it in the response.

    Sync and async, as Django's own middleware; under daphne it runs sync (config/asgi_handler.py).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        tokens = self._enter(request)
        try:
            response = self.get_response(request)
        finally:
            self._leave(tokens)
        response[REQUEST_ID_HEADER] = tokens[2]
        return response

    async def _acall(self, request):
        tokens = self._enter(request)
        try:
            response = await self.get_response(request)
        finally:
            self._leave(tokens)
        response[REQUEST_ID_HEADER] = tokens[2]
        return response

    @staticmethod
    def _enter(request):
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        return request_id_var.set(request_id), job_id_var.set(None), request_id

    @staticmethod
    def _leave(tokens) -> None:
        request_id_var.reset(tokens[0])
        job_id_var.reset(tokens[1])
