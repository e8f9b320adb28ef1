"""One error shape for the whole API: {"error": {"type", "code", "message", "param"}}.

The same shape answers on /api/ and on the OpenAI-compatible /v1/ (it is
OpenAI's own), so the official SDKs raise their usual error classes.
"""

from __future__ import annotations

import logging

import redis.exceptions
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inference.errors import DjinnError

logger = logging.getLogger(__name__)

REDIS_DOWN_RETRY_AFTER = 5  # seconds; long enough for a restart or a failover

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}

_DRF_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_api_key",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "rate_limited",
}


def error_body(status_code: int, code: str, message: str, param: str | None = None) -> dict:
    return {
        "error": {
            "type": _TYPES.get(status_code, "api_error"),
            "code": code,
            "message": message,
            "param": param,
        }
    }


def _first_field_error(detail, path: tuple[str, ...] = ()) -> tuple[str | None, str, str]:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        return _first_field_error(value, (*path, str(key)) if key != "non_field_errors" else path)
    if isinstance(detail, list):
        return _first_field_error(detail[0], path)
    param = ".".join(path) or None
    return param, getattr(detail, "code", "invalid"), str(detail)


def djinn_error_response(exc: DjinnError) -> Response:
    response = Response(error_body(exc.status, exc.code, exc.message, exc.param), status=exc.status)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def exception_handler(exc, context):
    if isinstance(exc, DjinnError):
        return djinn_error_response(exc)
    if isinstance(exc, Http404):
        return Response(error_body(404, "not_found", "Not found."), status=404)
    if isinstance(exc, DataError):  # a value the database cannot hold (NUL in a URL, a number out of range)
        return Response(
            error_body(400, "invalid_value", "A value in the request cannot be stored or searched."), status=400
        )
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        # Queues, quotas and event logs live in Redis: without it nothing can be accepted, but it is
        # an outage to wait out (503, Retry-After), not a fault in the request.
        logger.error("Redis is unreachable: %s", exc, exc_info=exc)
        message = "The service is briefly unable to take requests; try again shortly."
        response = Response(error_body(503, "service_unavailable", message), status=503)
        response["Retry-After"] = str(REDIS_DOWN_RETRY_AFTER)
        return response
    if isinstance(exc, RequestDataTooBig):  # Django's own check, when a body was read through request.body
        message = f"The request body is larger than {settings.API_MAX_REQUEST_BYTES} bytes."
        return Response(error_body(413, "request_too_large", message), status=413)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        param, code, message = _first_field_error(exc.detail)
        body = error_body(400, code, f"{param}: {message}" if param else message, param)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    code = _DRF_CODES.get(type(exc)) or getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.AuthenticationFailed) and getattr(exc.detail, "code", None):
        code = exc.detail.code
    message = str(exc.detail)
    if isinstance(exc, exceptions.UnsupportedMediaType):  # DRF says only what it will not read
        sent = context["request"].content_type.split(";")[0] or "none"
        message = f'Send the body as JSON, with Content-Type: application/json (not "{sent}").'
    response.data = error_body(response.status_code, code, message)
    return response


@csrf_exempt
def unknown_url(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any path under /api/ or /v1/ that names nothing: a JSON 404, never an HTML page."""
    return JsonResponse(error_body(404, "unknown_url", f"Nothing is served at {request.path}."), status=404)
