"""Model backends, registered by key."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from inference.backends.base import Backend, BackendConfigError, BackendError
from inference.backends.echo import EchoBackend
from inference.backends.llamacpp import LlamaCppBackend
from inference.backends.openai_compatible import OpenAICompatibleBackend
from inference.backends.sentence_transformers import SentenceTransformersBackend
from inference.backends.transformers_causal import TransformersBackend

BACKENDS: dict[str, type[Backend]] = {
    backend.key: backend
    for backend in (
        EchoBackend,
        LlamaCppBackend,
        SentenceTransformersBackend,
        TransformersBackend,
        OpenAICompatibleBackend,
    )
}

__all__ = ["BACKENDS", "Backend", "BackendConfigError", "BackendError", "build_backend", "validate_backend_config"]


def backend_class(key: str) -> type[Backend]:
    try:
        return BACKENDS[key]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendConfigError(f"unknown backend {key!r}; known backends: {known}", field="backend") from None


def validate_backend_config(key: str, task: str, config: Any) -> dict[str, Any]:
    """The config as the backend will read it, or a BackendConfigError saying what is wrong."""
    cls = backend_class(key)
    if task not in cls.tasks:
        raise BackendConfigError(f"backend {key!r} cannot serve {task!r} models", field="task")
    if not isinstance(config, dict):
        raise BackendConfigError("config must be a JSON object")
    try:
        parsed = cls.Config.model_validate(config)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise BackendConfigError(f"{where}: {error['msg']}" if where else error["msg"]) from None
    return parsed.model_dump(exclude_defaults=True)


def build_backend(key: str, config: dict[str, Any]) -> Backend:
    cls = backend_class(key)
    return cls(cls.Config.model_validate(config))
