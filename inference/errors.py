"""Errors a caller can cause, each with a stable code and an HTTP status.

The API's exception handler turns any of these into
`{"error": {"type", "code", "message", "param"}}`.
"""

from __future__ import annotations


class DjinnError(Exception):
    status = 400
    code = "bad_request"
    type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.status = status or self.status


class NotFound(DjinnError):
    status = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ModelDisabled(DjinnError):
    status = 422
    code = "model_disabled"


class InvalidInput(DjinnError):
    status = 422
    code = "invalid_input"


class InvalidJobInput(InvalidInput):
    """A job's input that its task's schema or its model's limits refuse: what is wrong (`reason`)
    with which field (`param`, a dotted path inside the input)."""

    def __init__(self, reason: str, *, code: str | None = None, param: str | None = None, status: int | None = None):
        super().__init__(f"{param}: {reason}" if param else reason, code=code, param=param, status=status)
        self.reason = reason

    def within(self, field: str) -> InvalidJobInput:
        """The same error for a request that carries the input as its `field`: `param` names a path in the body."""
        return InvalidJobInput(
            self.reason, code=self.code, param=f"{field}.{self.param}" if self.param else field, status=self.status
        )


class Conflict(DjinnError):
    status = 409
    code = "conflict"
