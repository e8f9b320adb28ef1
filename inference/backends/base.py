"""The interface every model backend implements.

A backend never imports Django: it is given its validated config and a job's
validated input, and yields text (one token per item) or returns vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

ShouldStop = Callable[[], bool]

# Threads a CPU-bound backend may use in this process; set by the worker from its pool size so
# that N processes on N cores do not each start N threads. None: every core.
_cpu_threads: int | None = None


def set_cpu_threads(count: int | None) -> None:
    global _cpu_threads
    _cpu_threads = count


def cpu_threads() -> int:
    """Threads for a backend whose config names none."""
    return _cpu_threads or os.cpu_count() or 1


class BackendError(Exception):
    """A failure the job records with a stable code (e.g. `model_unavailable`)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class BackendConfigError(Exception):
    """An operator's model registration that cannot work; `field` is the model field at fault."""

    def __init__(self, message: str, *, field: str = "config"):
        super().__init__(message)
        self.message = message
        self.field = field


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Backend:
    """Subclasses set `key`, `tasks` and `Config`, and override what their tasks need."""

    key: ClassVar[str]
    tasks: ClassVar[frozenset[str]]
    Config: ClassVar[type[BackendConfig]] = BackendConfig

    def __init__(self, config: BackendConfig):
        self.config = config

    def load(self) -> None:
        """Bring weights into memory; called once per worker process before first use."""

    def close(self) -> None:
        """Release what `load` took."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prompt_text(self, job_input: dict[str, Any]) -> str:
        if "messages" in job_input:
            return "\n".join(message["content"] for message in job_input["messages"])
        if "prompt" in job_input:
            return job_input["prompt"]
        texts = job_input["input"]
        return "\n".join([texts] if isinstance(texts, str) else texts)

    def stream(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        """Yield generated text one token at a time, checking `should_stop` between tokens."""
        raise BackendError("unsupported_task", f"{self.key} does not generate text")

    def texts_per_step(self) -> int:
        """How many texts `embed` and `classify` should be given at once to work well (a batch or a
        few): the worker hands a job's texts over a step at a time, reporting progress and honouring
        a cancel between steps."""
        return 64

    def embed(self, texts: list[str], *, normalize: bool) -> list[list[float]]:
        raise BackendError("unsupported_task", f"{self.key} does not embed text")

    def classify(self, texts: list[str], labels: list[str], *, multi_label: bool) -> list[dict[str, float]]:
        raise BackendError("unsupported_task", f"{self.key} does not classify text")
