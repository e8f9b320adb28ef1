"""Backends loaded in this worker process, one per registered model.

A model is loaded once and kept; an operator's edit (a newer `updated_at`)
or disabling it releases the old instance.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from inference.backends import Backend, BackendError, build_backend
from inference.models import AIModel

logger = logging.getLogger(__name__)


@dataclass
class _Loaded:
    version: datetime
    backend: Backend


_loaded: dict[int, _Loaded] = {}
_lock = threading.Lock()


def backend_for(model: AIModel) -> Backend:
    """The loaded backend for `model`; BackendError(model_unavailable) if it cannot load."""
    with _lock:
        entry = _loaded.get(model.pk)
        if entry is not None and entry.version == model.updated_at:
            return entry.backend
        release(model.pk, locked=True)
        try:
            backend = build_backend(model.backend, model.config)
            backend.load()
        except BackendError:
            raise
        except Exception as exc:
            logger.exception("model %s failed to load", model.slug)
            raise BackendError("model_unavailable", f"The model {model.slug!r} could not be loaded: {exc}") from exc
        _loaded[model.pk] = _Loaded(version=model.updated_at, backend=backend)
        return backend


def release(model_id: int, *, locked: bool = False) -> None:
    """Forget a model and free what it holds."""
    if not locked:
        with _lock:
            return release(model_id, locked=True)
    entry = _loaded.pop(model_id, None)
    if entry is not None:
        try:
            entry.backend.close()
        except Exception:
            logger.warning("closing model %s failed", model_id, exc_info=True)


def loaded_model_ids() -> list[int]:
    return list(_loaded)


def warm(models: list[AIModel]) -> None:
    """Load these models now, so the first job does not pay for it."""
    for model in models:
        try:
            backend_for(model)
        except BackendError as exc:
            logger.error("could not warm %s: %s", model.slug, exc.message)
