"""JSON for the hot paths: the event log, websocket frames, SSE and stored outputs.

An embedding job's output is ~100,000 floats, written to PostgreSQL and to the event log
and read back by every watcher; the standard library spends ~40 ms turning it into text and
~25 ms reading it back, orjson ~3 ms each. Values orjson refuses (integers beyond 64 bits,
in a client's free-form input) fall back to the standard library, so nothing changes but speed.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 left as is."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a subclass it does not know
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
