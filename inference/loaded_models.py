"""Backends loaded in this worker process, one per registered model.

A model is loaded once and kept. An operator's edit (a newer `updated_at`)
replaces it on its next job; disabling or deleting it releases it, either
when its next job arrives (and fails with `model_disabled`) or, while the
process is idle, at the next `release_stale()` (see inference/warmup.py). A
backend replaced while other jobs of the process (a thread pool) may still use
it is closed once they have ended, never under a generation.
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
    slug: str
    version: datetime
    backend: Backend


_loaded: dict[int, _Loaded] = {}
# `_lock` guards the dictionaries and the busy count; each model also has its
# own load lock, so a slow load (seconds for a torch model) blocks only jobs of
# that model, not every job of the process.
_lock = threading.Lock()
_load_locks: dict[int, threading.Lock] = {}
_jobs_running = 0
# Backends an operator's edit or switch-off replaced while other jobs of this process (a thread
# pool) may still be generating with them: closed once no job runs here.
_retired: list[_Loaded] = []


def backend_for(model: AIModel) -> Backend:
    """The loaded backend for `model`; BackendError `model_unavailable` if it cannot load,
    `model_disabled` if an operator turned it off."""
    if not model.enabled:
        _retire(model.pk)
        raise BackendError("model_disabled", f"The model {model.slug!r} was disabled by an operator.")
    with _lock:
        load_lock = _load_locks.setdefault(model.pk, threading.Lock())
    with load_lock:
        entry = _loaded.get(model.pk)
        if entry is not None and entry.version == model.updated_at:
            return entry.backend
        _retire(model.pk)
        try:
            backend = build_backend(model.backend, model.config)
            backend.load()
        except BackendError as exc:
            logger.error("model %s failed to load: %s", model.slug, exc.message)
            raise BackendError("model_unavailable", f"The model {model.slug!r} could not be loaded: {exc.message}")
        except Exception as exc:
            logger.exception("model %s failed to load", model.slug)
            raise BackendError("model_unavailable", f"The model {model.slug!r} could not be loaded: {exc}") from exc
        with _lock:
            _loaded[model.pk] = _Loaded(slug=model.slug, version=model.updated_at, backend=backend)
        logger.info("model %s loaded (%s)", model.slug, model.backend)
        return backend


def _retire(model_id: int) -> None:
    """Forget a model; free what it holds now, or once the other jobs of this process have ended."""
    with _lock:
        entry = _loaded.pop(model_id, None)
        if entry is not None and _jobs_running > 1:  # the caller is a job too
            _retired.append(entry)
            return
    if entry is not None:
        _close(entry)


def _close(entry: _Loaded) -> None:
    try:
        entry.backend.close()
    except Exception:
        logger.warning("closing model %s failed", entry.slug, exc_info=True)
    logger.info("model %s released", entry.slug)


def loaded_model_ids() -> list[int]:
    with _lock:
        return list(_loaded)


def job_started() -> None:
    """A job began in this process: until it ends, idle releases wait."""
    global _jobs_running
    with _lock:
        _jobs_running += 1


def job_ended() -> None:
    global _jobs_running
    with _lock:
        _jobs_running = max(0, _jobs_running - 1)
        retired = []
        if _jobs_running == 0 and _retired:
            retired, _retired[:] = list(_retired), []
    for entry in retired:
        _close(entry)


def release_stale() -> list[int]:
    """Release loaded models an operator disabled, edited or deleted; only while no job runs here,
    so a backend is never closed under a generation. Returns the ids released."""
    ids = loaded_model_ids()
    if not ids:
        return []
    current = dict(AIModel.objects.filter(pk__in=ids, enabled=True).values_list("pk", "updated_at"))
    with _lock:
        if _jobs_running:
            return []
        stale = [pk for pk, entry in _loaded.items() if current.get(pk) != entry.version]
        entries = [_loaded.pop(pk) for pk in stale]
    for entry in entries:
        _close(entry)
    return stale


def warm(models: list[AIModel]) -> None:
    """Load these models now, so the first job does not pay for it."""
    for model in models:
        try:
            backend_for(model)
        except BackendError as exc:
            logger.error("could not warm %s: %s", model.slug, exc.message)
