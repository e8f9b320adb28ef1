"""How many websockets one user may hold open on a daphne process (settings.WEBSOCKETS_PER_USER).

An open socket costs the server little (about 18 KiB, and no Redis connection), but its file
descriptor counts against the process's limit: one user's script opening sockets without end
would leave none for anyone else's handshake. The count is each event loop's own, kept in
memory: a daphne that restarts starts again from zero, and no crash can leave a phantom behind.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings

from inference.event_loops import one_per_event_loop


class OpenSockets:
    """The sockets each user holds open on this event loop."""

    def __init__(self) -> None:
        self._held: Counter[Any] = Counter()

    def take(self, user_id: Any) -> bool:
        """Count one more socket for the user, or say False: they hold as many as they may."""
        if self._held[user_id] >= settings.WEBSOCKETS_PER_USER:
            return False
        self._held[user_id] += 1
        return True

    def give_back(self, user_id: Any) -> None:
        self._held[user_id] -= 1
        if self._held[user_id] <= 0:
            del self._held[user_id]


@one_per_event_loop
def open_sockets() -> OpenSockets:
    """The running event loop's count."""
    return OpenSockets()
