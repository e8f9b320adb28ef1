"""Strict input schemas, one per task, checked before any job exists.

Pydantic models describe what each task accepts; `validate_job_input` adds the
model's own limits. Every violation becomes an `InvalidJobInput` naming the field
path and a stable code. This module knows nothing of Django models: it is
given the limits it checks.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from inference.errors import InvalidJobInput


def _no_nul(value: str) -> str:
    # PostgreSQL stores no NUL character, in text or in JSON: refuse it here, not with a 500 later.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


NoNul = AfterValidator(_no_nul)
NonEmptyText = Annotated[str, StringConstraints(min_length=1), NoNul]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GenerationParams(_Strict):
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int | None = Field(None, ge=1, le=131_072, description="Most tokens to generate.")
    stop: NonEmptyText | list[NonEmptyText] | None = Field(None, description="Text that ends generation.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed for reproducible sampling.")

    # Checks of one field are field validators, so the error names the field (`param`).
    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, stop):
        if isinstance(stop, list) and len(stop) > 4:
            raise PydanticCustomError("too_long", "stop takes at most 4 sequences")
        return stop


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, NoNul] = Field(max_length=1_000_000)


class ChatInput(GenerationParams):
    messages: list[Message] = Field(min_length=1, max_length=512)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages):
        if messages[-1].role == "system":
            raise ValueError("the last message must come from the user or the assistant")
        return messages


class CompletionInput(GenerationParams):
    prompt: NonEmptyText


TextBatch = NonEmptyText | Annotated[list[NonEmptyText], Field(min_length=1, max_length=256)]


class EmbeddingInput(_Strict):
    input: TextBatch
    normalize: bool = True


class ClassificationInput(_Strict):
    input: TextBatch
    labels: list[NonEmptyText] = Field(min_length=2, max_length=64)
    multi_label: bool = False

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels):
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels


SCHEMAS: dict[str, type[_Strict]] = {
    "chat": ChatInput,
    "completion": CompletionInput,
    "embedding": EmbeddingInput,
    "classification": ClassificationInput,
}
GENERATION_TASKS = frozenset({"chat", "completion"})

_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_choice",
    "too_short": "too_short",
    "too_long": "too_long",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
}
# Pydantic's words where the API's serializers say the same thing otherwise.
_REASONS = {"missing": "This field is required.", "extra_forbidden": "Unknown field."}
# Pydantic says "Input should be less than or equal to 2": the API names the bound and what was given.
_BOUNDS = {
    "less_than_equal": ("le", "no greater than"),
    "greater_than_equal": ("ge", "no less than"),
    "less_than": ("lt", "below"),
    "greater_than": ("gt", "above"),
}
# Pydantic's names for the members of a union, which it adds to an error's location.
_UNION_MEMBERS = {"str", "list[str]", "constrained-str", "list[constrained-str]"}


def telling_error(exc: ValidationError) -> tuple[dict[str, Any], str | None]:
    """The one error of `exc` worth reporting, and the path of its field ("messages.0.role"; None: the body)."""
    errors = exc.errors()
    # A union field (text or list of texts) reports one error per member; the telling one is from
    # the member whose type matched (a list that is empty, not "should be a string"), and the deepest.
    same_field = [error for error in errors if error["loc"][:1] == errors[0]["loc"][:1]]
    error = min(same_field, key=lambda error: (error["type"].endswith("_type"), -len(error["loc"])))
    path = [str(part) for part in error["loc"] if not (isinstance(part, str) and part.endswith("]"))]
    path = [part for part in path if part not in _UNION_MEMBERS]
    return error, ".".join(path) or None


def plain_reason(error: dict[str, Any]) -> str:
    """What a person reads for a Pydantic error: its message, in the API's words where they differ."""
    if error["type"] in _REASONS:
        return _REASONS[error["type"]]
    context = error.get("ctx") or {}
    if error["type"] in ("too_short", "too_long") and context.get("field_type") == "List":
        # Pydantic says "List should have at least 1 item after validation, not 0".
        bound = context["min_length"] if error["type"] == "too_short" else context["max_length"]
        items = "item" if bound == 1 else "items"
        least = "at least" if error["type"] == "too_short" else "at most"
        return f"Give {least} {bound} {items}, not {context['actual_length']}."
    if error["type"] in _BOUNDS and isinstance(error.get("input"), int | float):
        key, relation = _BOUNDS[error["type"]]
        return f"Give a number {relation} {_plain_number(context[key])}, not {_plain_number(error['input'])}."
    return error["msg"].removeprefix("Value error, ")


def _plain_number(value: float) -> int | float:
    """2.0 reads as 2."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _first_error(exc: ValidationError) -> InvalidJobInput:
    error, path = telling_error(exc)
    code = _CODES.get(error["type"], "invalid_type" if error["type"].endswith("_type") else "invalid_value")
    return InvalidJobInput(plain_reason(error), code=code, param=path)


@dataclass(frozen=True)
class ModelLimits:
    task: str
    max_input_chars: int
    max_output_tokens: int
    default_params: dict[str, Any]


def input_schema(task: str) -> dict[str, Any]:
    """The JSON Schema a job for `task` must satisfy (a copy: callers may change it)."""
    return copy.deepcopy(_generated_schema(task))


@functools.cache
def _generated_schema(task: str) -> dict[str, Any]:
    # Generating it takes pydantic about a millisecond; every model listing would pay it per model.
    return SCHEMAS[task].model_json_schema()


def validate_default_params(task: str, params: Any) -> dict[str, Any]:
    """Check an operator's default parameters against the task's schema."""
    if not isinstance(params, dict):
        raise InvalidJobInput("default parameters must be a JSON object")
    if task not in GENERATION_TASKS:
        if params:
            raise InvalidJobInput(f"{task} models take no default parameters")
        return {}
    try:
        parsed = GenerationParams.model_validate(params)
    except ValidationError as exc:
        raise _first_error(exc) from None
    return parsed.model_dump(exclude_none=True)


def _input_chars(task: str, parsed: _Strict) -> int:
    if task == "chat":
        return sum(len(message.content) for message in parsed.messages)
    if task == "completion":
        return len(parsed.prompt)
    texts = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    labels = getattr(parsed, "labels", [])
    return sum(len(text) for text in texts) + sum(len(label) for label in labels)


def validate_job_input(limits: ModelLimits, raw: Any) -> dict[str, Any]:
    """The input a job will run with, or an InvalidJobInput saying what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidJobInput("the input must be a JSON object", code="invalid_type")
    try:
        parsed = SCHEMAS[limits.task].model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None
    size = _input_chars(limits.task, parsed)
    if size > limits.max_input_chars:
        raise InvalidJobInput(
            f"{size:,} characters in all; this model reads at most {limits.max_input_chars:,}",
            code="input_too_large",
            param="messages" if limits.task == "chat" else ("prompt" if limits.task == "completion" else "input"),
            status=413,
        )
    validated = parsed.model_dump(exclude_none=True)
    if limits.task in GENERATION_TASKS:
        max_tokens = validated.get("max_tokens")
        if max_tokens is not None and max_tokens > limits.max_output_tokens:
            raise InvalidJobInput(
                f"{max_tokens} is more than this model generates (at most {limits.max_output_tokens})",
                code="max_tokens_exceeded",
                param="max_tokens",
            )
        validated = {**limits.default_params, **validated}
        validated.setdefault("max_tokens", limits.max_output_tokens)
        validated["max_tokens"] = min(validated["max_tokens"], limits.max_output_tokens)
    return validated
