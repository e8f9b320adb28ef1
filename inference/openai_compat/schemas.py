"""OpenAI's request and response shapes, as much of them as Djinn serves.

Requests are checked strictly: a field OpenAI defines but Djinn cannot honour
(n > 1, logprobs, tools...) is refused with 400 rather than silently ignored;
penalties and `user`, `metadata`, `store` are accepted and have no effect.
These models also document the facade in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from inference.errors import DjinnError
from inference.validation import plain_reason, telling_error

Text = Annotated[str, StringConstraints(max_length=1_000_000)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Stop = (
    Annotated[str, StringConstraints(min_length=1)]
    | Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(max_length=4)]
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Request):
    type: Literal["text"]
    text: Text


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart]
    name: str | None = None


class StreamOptions(_Request):
    include_usage: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text"]


class _Generation(_Request):
    model: ModelName
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: Literal[1] | None = Field(None, description="Only 1 is supported.")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: Stop | None = None
    max_tokens: int | None = Field(None, ge=1, le=131_072)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="Accepted; has no effect.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="Accepted; has no effect.")
    logit_bias: Annotated[dict[str, int], Field(max_length=0)] | None = Field(None, description="Only empty.")
    user: str | None = Field(None, max_length=256, description="Accepted; has no effect.")


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1, max_length=512)
    max_completion_tokens: int | None = Field(None, ge=1, le=131_072)
    logprobs: Literal[False] | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None


class CompletionRequest(_Generation):
    prompt: (
        Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]
        | Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]],
            Field(min_length=1, max_length=1),
        ]
    )
    echo: Literal[False] | None = None
    best_of: Literal[1] | None = None
    logprobs: None = None
    suffix: None = None


class EmbeddingRequest(_Request):
    model: ModelName
    input: (
        Annotated[str, StringConstraints(min_length=1)]
        | Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1, max_length=256)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = Field(None, max_length=256)


# ------------------------------------------------------------------------------
# Responses (documentation; the views build plain dicts of these shapes)
# ------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 with base64.")


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelCardList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


# ------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------

_CODES = {"missing": "required", "extra_forbidden": "unknown_field", "literal_error": "unsupported_value"}
_ONE_CHOICE = "Djinn returns one choice per request: {field} must be 1."
_NO_TOOLS = "Djinn's models do not call tools or functions."
# OpenAI's fields that Djinn knows and cannot honour, and why: a caller who sent one learns it is
# not a typo ("Unknown field.") nor a value to tweak ("Input should be 1"), and what to send instead.
_UNSUPPORTED = {
    "n": _ONE_CHOICE.format(field="n"),
    "best_of": _ONE_CHOICE.format(field="best_of"),
    "logprobs": "Log probabilities are not available: leave logprobs out.",
    "top_logprobs": "Log probabilities are not available.",
    "echo": "The prompt is not echoed back: leave echo out.",
    "suffix": "Text insertion (suffix) is not supported.",
    "response_format": "Only the text response format is supported.",
    "logit_bias": "logit_bias is not supported: leave it out or send {}.",
    "tools": _NO_TOOLS,
    "tool_choice": _NO_TOOLS,
    "parallel_tool_calls": _NO_TOOLS,
    "functions": _NO_TOOLS,
    "function_call": _NO_TOOLS,
    "modalities": "Djinn's models answer in text only.",
    "audio": "Djinn's models answer in text only.",
    "prediction": "Predicted outputs are not supported.",
    "web_search_options": "Web search is not supported.",
    "reasoning_effort": "Djinn's models take no reasoning_effort.",
    "dimensions": "Each model returns its embeddings whole: leave dimensions out.",
}
# The same, for a value deeper in the request: by its path with each index as `*`.
_UNSUPPORTED_AT = {
    "messages.*.content.*.type": "Only text parts are supported: Djinn's models do not read images, audio or files.",
    "messages.*.role": _NO_TOOLS,  # "tool" and "function" (any other role is a plain mistake)
}
_TOOL_ROLES = {"tool", "function"}
# OpenAI also takes the text to embed or complete as token ids, which mean nothing to another model's tokenizer.
_TEXT_FIELDS = {"input", "prompt"}
_TOKEN_IDS = "Send text: token ids are not supported."
# The failures that mean "a value Djinn cannot honour" rather than a malformed one.
_REFUSALS = {"extra_forbidden", "literal_error", "none_required", "too_long"}


def parse(schema: type[_Request], data: Any) -> Any:
    """`data` as a `schema`, or a 400 naming the first field at fault, the way OpenAI answers."""
    if not isinstance(data, dict):
        raise DjinnError("The body must be a JSON object.", code="invalid_type")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        error, param = telling_error(exc)
        code = _CODES.get(error["type"], "invalid_type" if error["type"].endswith("_type") else "invalid_value")
        message = _unsupported(error, param) or plain_reason(error)
        raise DjinnError(f"{param}: {message}" if param else message, code=code, param=param) from None


def _unsupported(error: dict[str, Any], param: str | None) -> str | None:
    """Why Djinn refuses a field or value of OpenAI's that it knows (None: the request is just malformed)."""
    if not param:
        return None
    if param.split(".")[0] in _TEXT_FIELDS and _token_ids(error.get("input")):
        return _TOKEN_IDS
    if error["type"] not in _REFUSALS:
        return None
    if (reason := _UNSUPPORTED.get(param.split(".")[0])) is not None:
        return reason
    pattern = ".".join("*" if part.isdigit() else part for part in param.split("."))
    if pattern == "messages.*.role" and error.get("input") not in _TOOL_ROLES:
        return None
    return _UNSUPPORTED_AT.get(pattern)


def _token_ids(value: Any) -> bool:
    """Whether `value` is a token id, or a list of them."""
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(item, int) and not isinstance(item, bool) for item in values)
