"""OpenAPI helpers: the bearer scheme and the error responses every operation documents."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from inference.api.serializers import ErrorOutput

_DESCRIPTIONS = {
    400: "Malformed request: bad JSON, a wrong type, an unknown field or a bad cursor.",
    401: "No API key, or an invalid or revoked one.",
    403: "Forbidden (a session without its CSRF token).",
    404: "No such object, or one that belongs to someone else.",
    409: "The Idempotency-Key was used with a different request.",
    413: "The body (or the model's input) is too large.",
    415: "The body is not application/json.",
    422: (
        "Well-formed, but the model cannot run it "
        "(invalid input, disabled model, refused webhook URL, more tokens than a day allows)."
    ),
    429: "A plan limit was reached: `rate_limited`, `concurrency_limit` or `token_quota_exceeded`.",
    503: "No worker could take the job in time, a model is unavailable, or the service briefly cannot queue work.",
    504: "The job did not finish in time.",
}
JOB_ID_HEADER = "X-Djinn-Job-Id"  # names the job a streamed answer comes from
RETRY_AFTER = {429: "Seconds to wait before trying again.", 503: "Seconds to wait before trying again."}

READ = (401, 403)
WRITE = (400, 401, 403, 413, 415)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorOutput, description=_DESCRIPTIONS[code]) for code in sorted(set(codes))}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Send the same key again (with the same body) to get the same job back instead of a new one. "
    "At most 255 characters.",
    pattern=r"^.{1,255}$",
)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer djn_...`: an API key (POST /api/v1/keys).",
        }


_EVENTS_PATH = "/api/v1/jobs/{job_id}/events"


def _error_ref(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}},
    }


def document_event_stream(result, generator, request, public):
    """Add the SSE endpoint (a plain async view, which DRF's generator does not see) to the schema."""
    result["paths"][_EVENTS_PATH] = {
        "get": {
            "operationId": "jobs_events",
            "summary": "Follow a job's events (Server-Sent Events)",
            "description": "Each event is `id: <seq>`, `event: <type>`, `data: {seq, type, attempt, data}`, ending "
            "with `done`. Resume with `?after=N` or the `Last-Event-ID` header.",
            "tags": ["jobs"],
            "parameters": [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}},
            ],
            "responses": {
                "200": {
                    "description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _error_ref(_DESCRIPTIONS[400]),
                "401": _error_ref(_DESCRIPTIONS[401]),
                "404": _error_ref(_DESCRIPTIONS[404]),
            },
            "security": [{"ApiKey": []}, {"cookieAuth": []}],
        }
    }
    return result


def document_read_limits(result, generator, request, public):
    """Every read may answer 429 (inference/api/throttling.py): say so once, for all of them."""
    for path, operations in result["paths"].items():
        read = operations.get("get")
        if read is None or path == _EVENTS_PATH:
            continue
        read["responses"].setdefault(
            "429",
            {
                **_error_ref("Too many reads this minute for your plan (`rate_limited`)."),
                "headers": {"Retry-After": {"description": RETRY_AFTER[429], "schema": {"type": "integer"}}},
            },
        )
    return result
