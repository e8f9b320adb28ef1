"""Any OpenAI-compatible server (vLLM, Ollama's /v1, llama.cpp's server, OpenAI) as a backend.

Chat and completions stream over server-sent events, parsed as they arrive;
embeddings are sent in batches. Failures map to stable `upstream_*` codes.
A request is retried, with a small backoff, only while no token has been
produced: after the first token a retry would repeat text the user has seen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field, field_validator, model_validator

from inference.backends.base import Backend, BackendConfig, BackendError, ShouldStop
from inference.backends.text_stream import storable

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 10.0


class OpenAIConfig(BackendConfig):
    base_url: str = Field(description="The API root, e.g. http://gpu-box:8000/v1.")
    model: str = Field(min_length=1, max_length=200, description="The model name the server knows.")
    api_key: str | None = Field(None, min_length=1, repr=False, description="Prefer api_key_env: config is visible.")
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable holding the API key."
    )
    connect_timeout: float = Field(5.0, gt=0, le=120, description="Seconds to open a connection.")
    read_timeout: float = Field(60.0, gt=0, le=3600, description="Most seconds to wait between two chunks.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries before the first token only.")
    retry_backoff: float = Field(0.5, ge=0, le=30, description="First retry delay in seconds; doubles each time.")
    embedding_batch_size: int = Field(256, ge=1, le=2048, description="Texts per embeddings request.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers, e.g. an organization.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            host = httpx.URL(value).host if value.startswith(("http://", "https://")) else ""
        except httpx.InvalidURL:
            host = ""
        if not host:
            raise ValueError("must be an http:// or https:// URL such as http://localhost:8000/v1")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_authorization_header(cls, value: dict[str, str]) -> dict[str, str]:
        if any(name.lower() == "authorization" for name in value):
            raise ValueError("set the key with api_key_env (or api_key), not an Authorization header")
        return value

    @model_validator(mode="after")
    def _one_key_source(self):
        if self.api_key and self.api_key_env:
            raise ValueError("give api_key or api_key_env, not both")
        return self


class OpenAICompatibleBackend(Backend):
    """Chat, completions and embeddings from a remote OpenAI-compatible server."""

    key = "openai"
    tasks = frozenset({"chat", "completion", "embedding"})
    Config = OpenAIConfig
    config: OpenAIConfig

    def __init__(self, config: OpenAIConfig):
        super().__init__(config)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        headers = {"Accept": "application/json", **self.config.headers}
        api_key = self._api_key()
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeout = httpx.Timeout(self.config.read_timeout, connect=self.config.connect_timeout)
        self._client = httpx.Client(base_url=self.config.base_url, headers=headers, timeout=timeout)

    def _api_key(self) -> str | None:
        if self.config.api_key_env is None:
            return self.config.api_key
        value = os.environ.get(self.config.api_key_env)
        if not value:
            raise BackendError(
                "model_unavailable", f"The environment variable {self.config.api_key_env} holding the API key is empty."
            )
        return value

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self.load()
        return self._client

    def count_tokens(self, text: str) -> int:
        # The server's tokenizer is not ours to run; ~4 characters a token is the usual estimate.
        return math.ceil(len(text) / 4)

    # ----------------------------------------------------------------- generation

    def stream(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        chat = "messages" in job_input
        body: dict[str, Any] = {"model": self.config.model, "stream": True}
        if chat:
            body["messages"] = [{"role": m["role"], "content": m["content"]} for m in job_input["messages"]]
        else:
            body["prompt"] = job_input["prompt"]
        for name in ("temperature", "top_p", "max_tokens", "stop", "seed"):
            if job_input.get(name) is not None:
                body[name] = job_input[name]
        path = "/chat/completions" if chat else "/completions"

        produced = False
        for attempt in range(self.config.max_retries + 1):
            last_try = attempt == self.config.max_retries
            try:
                with self.client.stream("POST", path, json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _status_error(response)
                    complete = False
                    for chunk in _sse_events(response, should_stop):
                        if chunk is None:
                            complete = True
                            break
                        complete = complete or _finish_reason(chunk) is not None
                        text = storable(_chunk_text(chunk, chat))
                        if text:
                            produced = True
                            yield text
                    if not complete and not should_stop():
                        message = "The model server closed the stream before the answer was complete."
                        raise _Retryable(BackendError("upstream_unavailable", message), None)
                    return
            except _Retryable as exc:
                if produced or last_try or should_stop():
                    raise exc.error from None
                self._backoff(attempt, exc.retry_after)
            except httpx.TransportError as exc:
                error = _transport_error(exc)
                if produced or last_try or should_stop():
                    raise error from None
                logger.info("retrying %s after %s", self.config.base_url, exc.__class__.__name__)
                self._backoff(attempt, None)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        delay = self.config.retry_backoff * (2**attempt)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        time.sleep(delay)

    # ----------------------------------------------------------------- embeddings

    def embed(self, texts: list[str], *, normalize: bool) -> list[list[float]]:
        vectors: list[list[float]] = []
        size = self.config.embedding_batch_size
        for start in range(0, len(texts), size):
            vectors.extend(self._embed_batch(texts[start : start + size]))
        if normalize:
            vectors = [_unit(vector) for vector in vectors]
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.config.model, "input": texts}
        for attempt in range(self.config.max_retries + 1):
            last_try = attempt == self.config.max_retries
            try:
                response = self.client.post("/embeddings", json=body)
                if response.status_code >= 400:
                    raise _status_error(response)
                return _embeddings_from(response, len(texts))
            except _Retryable as exc:
                if last_try:
                    raise exc.error from None
                self._backoff(attempt, exc.retry_after)
            except httpx.TransportError as exc:
                if last_try:
                    raise _transport_error(exc) from None
                self._backoff(attempt, None)
        raise AssertionError("unreachable")  # pragma: no cover


class _Retryable(Exception):
    """An upstream failure worth another try, carrying the error to raise if none is left."""

    def __init__(self, error: BackendError, retry_after: float | None):
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


def _status_error(response: httpx.Response) -> Exception:
    """The error for an HTTP error status: a _Retryable wrapper or a final BackendError."""
    status = response.status_code
    detail = _upstream_message(response)
    if status in (401, 403):
        error = BackendError("upstream_auth_failed", f"The model server refused our credentials ({status}): {detail}")
    elif status == 429:
        error = BackendError("upstream_rate_limited", f"The model server is rate limiting us: {detail}")
    elif status >= 500 or status in RETRYABLE_STATUSES:
        error = BackendError("upstream_unavailable", f"The model server failed ({status}): {detail}")
    else:
        error = BackendError("upstream_bad_request", f"The model server rejected the request ({status}): {detail}")
    if status in RETRYABLE_STATUSES:
        return _Retryable(error, _retry_after(response))
    return error


def _upstream_message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text[:300] or response.reason_phrase
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _transport_error(exc: httpx.TransportError) -> BackendError:
    if isinstance(exc, httpx.TimeoutException):
        return BackendError("upstream_timeout", f"The model server did not answer in time ({exc.__class__.__name__}).")
    return BackendError("upstream_unavailable", f"Could not reach the model server ({exc.__class__.__name__}).")


def _sse_events(response: httpx.Response, should_stop: ShouldStop) -> Iterator[dict[str, Any] | None]:
    """The JSON payloads of a server-sent event stream, as they arrive; None for the closing [DONE]."""
    data: list[str] = []
    for line in response.iter_lines():
        if should_stop():
            return
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # comments, `event:`/`id:` fields, keep-alives
        payload, data = "\n".join(data), []
        if payload.strip() == "[DONE]":
            yield None
            return
        yield _event_json(payload)
    if data:  # the last event may lack its blank line
        payload = "\n".join(data)
        yield None if payload.strip() == "[DONE]" else _event_json(payload)


def _event_json(payload: str) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except ValueError:
        raise BackendError("upstream_bad_response", "The model server sent an event that is not JSON.") from None
    if not isinstance(event, dict):
        raise BackendError("upstream_bad_response", "The model server sent an event that is not a JSON object.")
    if "error" in event:
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise BackendError("upstream_error", f"The model server failed mid-stream: {str(message)[:300]}")
    return event


def _finish_reason(chunk: dict[str, Any]) -> str | None:
    choices = chunk.get("choices") or []
    return choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None


def _chunk_text(chunk: dict[str, Any], chat: bool) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""  # e.g. a final usage-only chunk
    if chat:
        delta = choices[0].get("delta") or {}
        return delta.get("content") or ""
    return choices[0].get("text") or ""


def _embeddings_from(response: httpx.Response, count: int) -> list[list[float]]:
    try:
        items = sorted(response.json()["data"], key=lambda item: item["index"])
        vectors = [[float(value) for value in item["embedding"]] for item in items]
    except (ValueError, KeyError, TypeError):
        raise BackendError("upstream_bad_response", "The model server's embeddings answer is malformed.") from None
    if len(vectors) != count:
        raise BackendError(
            "upstream_bad_response", f"Asked for {count} embeddings, the model server sent {len(vectors)}."
        )
    return vectors


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]
