"""The `Idempotency-Key` header, read the same way by every endpoint that creates a job."""

from __future__ import annotations

from rest_framework.request import Request

from inference.errors import DjinnError

HEADER = "Idempotency-Key"
MAX_LENGTH = 255  # Job.idempotency_key


def idempotency_key(request: Request) -> str | None:
    """The key the request sent (None when it sent none), or a 400 naming the header."""
    key = request.headers.get(HEADER) or None
    if key is not None and len(key) > MAX_LENGTH:
        raise DjinnError(
            f"{HEADER} is {len(key)} characters long; it may be at most {MAX_LENGTH}.",
            code="invalid_idempotency_key",
            param=HEADER,
        )
    return key
