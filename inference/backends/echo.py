"""A deterministic backend for tests, benchmarks and smoke tests.

It answers with the words of the last message (or prompt), cycled to `tokens`
words when configured, at `tokens_per_second` (0: as fast as it can).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from inference.backends.base import Backend, BackendConfig, BackendError, ShouldStop
from inference.backends.text_stream import apply_stops, stop_list


class EchoConfig(BackendConfig):
    tokens: int | None = Field(None, ge=1, le=1_000_000, description="Answer length in words; default: the prompt's.")
    tokens_per_second: float = Field(0, ge=0, le=1_000_000, description="0 means no delay.")
    dimensions: int = Field(8, ge=1, le=4096, description="Length of embedding vectors.")
    fail_with: str | None = Field(None, description="Fail every job with this error code (for drills).")
    fail_after_tokens: int = Field(0, ge=0, le=1_000_000, description="With fail_with: fail after this many words.")
    load_seconds: float = Field(0, ge=0, le=600, description="How long loading takes, as a large model's would.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts embedded or classified at once.")
    seconds_per_text: float = Field(
        0, ge=0, le=60, description="How long each text takes to embed or classify, as a real model's would."
    )


class EchoBackend(Backend):
    """Repeats the prompt word by word, with no model: deterministic, for smoke tests and drills."""

    key = "echo"
    tasks = frozenset({"chat", "completion", "embedding", "classification"})
    Config = EchoConfig
    config: EchoConfig

    def load(self) -> None:
        if self.config.load_seconds:
            time.sleep(self.config.load_seconds)

    def _source_words(self, job_input: dict[str, Any]) -> list[str]:
        text = job_input["messages"][-1]["content"] if "messages" in job_input else job_input["prompt"]
        return text.split() or ["echo"]

    def answer_tokens(self, job_input: dict[str, Any]) -> list[str]:
        """The whole answer, token by token, for this input."""
        words = self._source_words(job_input)
        count = self.config.tokens or len(words)
        count = min(count, job_input.get("max_tokens", count))
        return [words[i % len(words)] + ("" if i == count - 1 else " ") for i in range(count)]

    def stream(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        # `stop` as the real backends honour it: a client tried against echo sees what a model would do.
        tokens = apply_stops(self._paced(job_input, should_stop), stop_list(job_input.get("stop")))
        if self.config.fail_with:
            yield from itertools.islice(tokens, self.config.fail_after_tokens)
            raise BackendError(self.config.fail_with, f"echo was configured to fail with {self.config.fail_with}")
        yield from tokens

    def _paced(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        interval = 1 / self.config.tokens_per_second if self.config.tokens_per_second else 0
        started = time.monotonic()
        for index, token in enumerate(self.answer_tokens(job_input)):
            if should_stop():
                return
            if interval:
                delay = started + index * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield token

    def texts_per_step(self) -> int:
        return self.config.batch_size

    def embed(self, texts: list[str], *, normalize: bool) -> list[list[float]]:
        time.sleep(len(texts) * self.config.seconds_per_text)
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            vector = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(self.config.dimensions)]
            if normalize:
                norm = math.sqrt(sum(value * value for value in vector)) or 1.0
                vector = [value / norm for value in vector]
            vectors.append(vector)
        return vectors

    def classify(self, texts: list[str], labels: list[str], *, multi_label: bool) -> list[dict[str, float]]:
        # A label scores by how many of its words the text contains.
        time.sleep(len(texts) * self.config.seconds_per_text)
        results = []
        for text in texts:
            words = set(text.lower().split())
            raw = [1 + sum(word in words for word in label.lower().split()) for label in labels]
            total = sum(raw)
            results.append({label: value / total for label, value in zip(labels, raw, strict=True)})
        return results
