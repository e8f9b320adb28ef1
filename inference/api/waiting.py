"""Waiting for a job on the event loop: follow its event log until `done`, no polling of the database."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from django.conf import settings

from inference.services.events import job_events_follow_async

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,6})(?:$|[,;\s])", re.IGNORECASE)


def preferred_wait(prefer_header: str | None) -> int | None:
    """Seconds asked for by `Prefer: wait=N` (RFC 7240), capped; None when not asked."""
    if not prefer_header:
        return None
    match = _WAIT.search(prefer_header)
    if match is None:
        return None
    return min(int(match.group(1)), settings.API_PREFER_WAIT_MAX_SECONDS)


async def job_wait_finished(*, job_id: Any, timeout: float) -> bool:
    """True once the job has ended, False if `timeout` seconds passed first."""
    try:
        async with asyncio.timeout(timeout):
            async for event in job_events_follow_async(job_id=job_id):
                if event is not None and event.type == "done":
                    return True
    except TimeoutError:
        return False
    return True
