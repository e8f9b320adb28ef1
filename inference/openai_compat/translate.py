"""From OpenAI requests to job inputs, and from finished jobs to OpenAI answers."""

from __future__ import annotations

import base64
import struct
from typing import Any

from inference.models import Job
from inference.openai_compat.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest


def _sampling(request: ChatCompletionRequest | CompletionRequest, max_tokens: int | None) -> dict[str, Any]:
    params = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": max_tokens,
        "stop": request.stop,
        "seed": request.seed,
    }
    return {name: value for name, value in params.items() if value is not None}


def _text(content: str | list) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


def chat_job_input(request: ChatCompletionRequest) -> dict[str, Any]:
    messages = [
        {"role": "system" if message.role == "developer" else message.role, "content": _text(message.content)}
        for message in request.messages
    ]
    return {"messages": messages, **_sampling(request, request.max_completion_tokens or request.max_tokens)}


def completion_job_input(request: CompletionRequest) -> dict[str, Any]:
    prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[0]
    return {"prompt": prompt, **_sampling(request, request.max_tokens)}


def embedding_job_input(request: EmbeddingRequest) -> dict[str, Any]:
    return {"input": request.input, "normalize": True}


def usage(job: Job) -> dict[str, int]:
    return {
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "total_tokens": job.total_tokens,
    }


def completion_id(job: Job, kind: str) -> str:
    return f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{job.id.hex}"


def created(job: Job) -> int:
    return int(job.created_at.timestamp())


def chat_completion(job: Job) -> dict[str, Any]:
    return {
        "id": completion_id(job, "chat"),
        "object": "chat.completion",
        "created": created(job),
        "model": job.model.slug,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": job.output_text, "refusal": None},
                "finish_reason": job.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(job),
    }


def text_completion(job: Job) -> dict[str, Any]:
    return {
        "id": completion_id(job, "completion"),
        "object": "text_completion",
        "created": created(job),
        "model": job.model.slug,
        "choices": [{"index": 0, "text": job.output_text, "finish_reason": job.finish_reason, "logprobs": None}],
        "usage": usage(job),
    }


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_list(job: Job, encoding_format: str | None) -> dict[str, Any]:
    vectors = (job.output_json or {}).get("embeddings", [])
    encode = _base64_floats if encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(vector)} for i, vector in enumerate(vectors)],
        "model": job.model.slug,
        "usage": {"prompt_tokens": job.prompt_tokens, "total_tokens": job.prompt_tokens},
    }


def chunk(job: Job, kind: str, *, delta: dict | None = None, text: str | None = None, finish: str | None = None):
    """One streamed chunk: a chat delta or a completion's text."""
    if kind == "chat":
        choice = {"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        obj = "text_completion"
    return {
        "id": completion_id(job, kind),
        "object": obj,
        "created": created(job),
        "model": job.model.slug,
        "choices": [choice],
    }
