"""The OpenAI-compatible API under /v1/: each call is a job, run by a worker like any other.

Views are async: a call waits for its job (or streams its events) on the
event loop, its request's thread parked meanwhile (inference/api/asyncview.py).
Errors keep OpenAI's shape, so the official SDKs raise their usual classes
(404 NotFoundError, 401 AuthenticationError, 429 RateLimitError, 400
BadRequestError).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from inference import json_codec
from inference.api.asyncview import AsyncAPIView, authenticates_itself, run_db
from inference.api.errors import error_body
from inference.api.idempotency import idempotency_key
from inference.api.schema import IDEMPOTENCY_KEY, JOB_ID_HEADER, WRITE, errors
from inference.api.waiting import job_wait_finished
from inference.errors import DjinnError, InvalidInput, ModelNotFound
from inference.job_errors import job_error_message
from inference.models import AIModel, Job, JobClient, JobStatus, finish_reason
from inference.openai_compat import translate
from inference.openai_compat.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingList,
    EmbeddingRequest,
    ModelCard,
    ModelCardList,
    parse,
)
from inference.selectors import ai_model_get_runnable, ai_models_enabled
from inference.services.admission import job_create
from inference.services.events import job_events_follow_async
from inference.services.jobs import job_cancel

NO_WORKER_RETRY_AFTER = 5
STREAMED = "Streamed as Server-Sent Events (`data: {chunk}` ... `data: [DONE]`) when `stream` is true."


# How a failed job answers. The SDKs retry every 5xx (twice by default), and each retry is a new
# job: a failure the caller's input caused is a 400, which they do not retry.
CALLER_FAULTS = frozenset(
    {
        "context_length_exceeded",  # the prompt is longer than the model reads
        "invalid_input",  # the model (its chat template) refused the input
        "upstream_bad_request",  # a remote model server refused the request with a 4xx (not auth, not 429)
    }
)
# Faults on our side that another try, a little later, may not meet: 503 with Retry-After.
PASSING_FAULTS = frozenset(
    {
        "model_unavailable",
        "model_disabled",
        "upstream_unavailable",
        "upstream_timeout",
        "upstream_rate_limited",
        "worker_lost",
    }
)
_INPUT_FIELD = {"chat": "messages", "completion": "prompt", "embedding": "input", "classification": "input"}
# Where a model of each task is called instead, for a caller who picked the wrong endpoint.
_ENDPOINT_OF_TASK = {
    "chat": "/v1/chat/completions",
    "completion": "/v1/completions",
    "embedding": "/v1/embeddings",
    "classification": "/api/v1/jobs",  # OpenAI has no classification endpoint
}


class _Unavailable(DjinnError):
    status = 503
    code = "no_worker"
    retry_after = NO_WORKER_RETRY_AFTER


def _submit(user, slug: str, task: str, job_input: dict[str, Any], idempotency_key: str | None) -> Job:
    model = ai_model_get_runnable(slug=slug)
    if model.task != task:
        raise DjinnError(
            f"The model {slug!r} is for {model.task}, not {task}: call it at {_ENDPOINT_OF_TASK[model.task]}.",
            code="model_task_mismatch",
            param="model",
        )
    try:
        return job_create(
            user=user, model=model, input=job_input, client=JobClient.OPENAI, idempotency_key=idempotency_key
        )
    except InvalidInput as exc:
        if exc.status == 422:  # OpenAI answers every invalid request with 400
            exc.status = 400
        raise


def _job(job_id) -> Job:
    return Job.objects.select_related("model").get(id=job_id)


def _outcome_error(job: Job, user) -> DjinnError | None:
    """Why a finished job has no answer to give, if it has none."""
    if job.status == JobStatus.SUCCEEDED:
        return None
    if job.status == JobStatus.EXPIRED:
        return _Unavailable("No worker took the job before its deadline; try again later.")
    if job.status == JobStatus.CANCELED:
        return DjinnError("The job was canceled before it finished.", code="job_canceled", status=409)
    code = job.error_code or "backend_error"
    message = job_error_message(code=code, message=job.error_message, user=user) or "The model failed."
    if code in CALLER_FAULTS:
        return DjinnError(message, code=code, param=_INPUT_FIELD.get(job.task), status=400)
    if code in PASSING_FAULTS:
        return _Unavailable(message, code=code)
    return DjinnError(message, code=code, status=500)


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json_codec.dumps(payload)
    return f"data: {data}\n\n".encode()


class _GenerationView(AsyncAPIView):
    """Shared by the endpoints that run a job: submit, then wait for it or stream it."""

    kind: str
    task: str
    request_model: type

    def job_input(self, body) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, job: Job, body) -> dict[str, Any]:
        raise NotImplementedError

    @authenticates_itself
    async def post(self, request: Request) -> Response | StreamingHttpResponse:
        body, job = await self.run_db_authenticated(self._submit, request)
        if getattr(body, "stream", False):
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            response = StreamingHttpResponse(
                self._stream(job, include_usage, request.user), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            response[JOB_ID_HEADER] = str(job.id)
            return response
        job = await self._wait(job)
        problem = _outcome_error(job, request.user)
        if problem is not None:
            raise problem
        return Response(self.answer(job, body), headers={JOB_ID_HEADER: str(job.id)})

    def _submit(self, request: Request) -> tuple[Any, Job]:
        body = parse(self.request_model, request.data)
        key = idempotency_key(request)
        return body, _submit(request.user, body.model, self.task, self.job_input(body), key)

    async def _wait(self, job: Job) -> Job:
        try:
            finished = job.is_finished or await job_wait_finished(
                job_id=job.id, timeout=settings.OPENAI_COMPAT_TIMEOUT_SECONDS
            )
        except asyncio.CancelledError:  # the client went away: so does its job
            await asyncio.shield(run_db(job_cancel, job=job))
            raise
        if not finished:
            await run_db(job_cancel, job=job)
            raise DjinnError("The job did not finish in time and was canceled.", code="timeout", status=504)
        return await run_db(_job, job.id)

    async def _stream(self, job: Job, include_usage: bool, user) -> AsyncIterator[bytes]:
        ended = False
        sent_text = False

        def with_usage(payload: dict[str, Any]) -> dict[str, Any]:
            return {**payload, "usage": None} if include_usage else payload

        try:
            if self.kind == "chat":
                yield _sse(with_usage(translate.chunk(job, self.kind, delta={"role": "assistant", "content": ""})))
            async for event in job_events_follow_async(job_id=job.id):
                if event.type == "status" and event.data.get("restart") and sent_text:
                    ended = True  # the job goes on; this stream cannot take back what it sent
                    message = "The job restarted on another worker with a different answer; read it from the job."
                    yield _sse(error_body(500, "stream_restarted", message))
                    return
                if event.type == "delta" and event.data.get("text"):
                    text = event.data["text"]
                    payload = {"delta": {"content": text}} if self.kind == "chat" else {"text": text}
                    yield _sse(with_usage(translate.chunk(job, self.kind, **payload)))
                    sent_text = True
                elif event.type == "done":
                    ended = True
                    if event.data["status"] != JobStatus.SUCCEEDED:
                        problem = _outcome_error(await run_db(_job, job.id), user)
                        if problem is not None:
                            yield _sse(error_body(problem.status, problem.code, problem.message))
                            return
                    usage = event.data["usage"]
                    finish = finish_reason(
                        task=job.task,
                        status=event.data["status"],
                        max_tokens=job.input.get("max_tokens"),
                        completion_tokens=usage["completion_tokens"],
                    )
                    yield _sse(with_usage(translate.chunk(job, self.kind, finish=finish)))
                    if include_usage:
                        yield _sse({**translate.chunk(job, self.kind), "choices": [], "usage": usage})
                    yield _sse("[DONE]")
                    return
        finally:
            if not ended:  # the client went away mid-stream: stop the work it asked for
                await asyncio.shield(run_db(job_cancel, job=job))


def _generation_schema(summary: str, request, response, operation_id: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=STREAMED,
        request=request,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            (200, "application/json"): OpenApiResponse(response),
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=STREAMED),
            **errors(*WRITE, 404, 409, 429, 503, 504),
        },
        tags=["openai"],
    )


class ChatCompletionsView(_GenerationView):
    kind = "chat"
    task = "chat"
    request_model = ChatCompletionRequest

    def job_input(self, body):
        return translate.chat_job_input(body)

    def answer(self, job, body):
        return translate.chat_completion(job)

    @authenticates_itself
    @_generation_schema("Create a chat completion", ChatCompletionRequest, ChatCompletion, "openai_chat_completions")
    async def post(self, request: Request):
        return await super().post(request)


class CompletionsView(_GenerationView):
    kind = "completion"
    task = "completion"
    request_model = CompletionRequest

    def job_input(self, body):
        return translate.completion_job_input(body)

    def answer(self, job, body):
        return translate.text_completion(job)

    @authenticates_itself
    @_generation_schema("Create a completion", CompletionRequest, Completion, "openai_completions")
    async def post(self, request: Request):
        return await super().post(request)


class EmbeddingsView(_GenerationView):
    kind = "embedding"
    task = "embedding"
    request_model = EmbeddingRequest

    def job_input(self, body):
        return translate.embedding_job_input(body)

    def answer(self, job, body):
        return translate.embedding_list(job, body.encoding_format)

    @authenticates_itself
    @extend_schema(
        operation_id="openai_embeddings",
        summary="Create embeddings",
        request=EmbeddingRequest,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: EmbeddingList, **errors(*WRITE, 404, 409, 429, 503, 504)},
        tags=["openai"],
    )
    async def post(self, request: Request):
        return await super().post(request)


def _card(model: AIModel) -> dict[str, Any]:
    return {"id": model.slug, "object": "model", "created": int(model.created_at.timestamp()), "owned_by": "djinn"}


class ModelsView(AsyncAPIView):
    @extend_schema(
        operation_id="openai_models_list",
        summary="List models",
        responses={200: ModelCardList, **errors(401, 403)},
        tags=["openai"],
    )
    async def get(self, request: Request) -> Response:
        models = await run_db(lambda: list(ai_models_enabled().order_by("slug")))
        return Response({"object": "list", "data": [_card(model) for model in models]})


class ModelView(AsyncAPIView):
    @extend_schema(
        operation_id="openai_models_retrieve",
        summary="Retrieve a model",
        responses={200: ModelCard, **errors(401, 403, 404)},
        tags=["openai"],
    )
    async def get(self, request: Request, model: str) -> Response:
        found = await run_db(lambda: ai_models_enabled().filter(slug=model).first())
        if found is None:
            raise ModelNotFound(f"The model {model!r} does not exist.", param="model")
        return Response(_card(found))
