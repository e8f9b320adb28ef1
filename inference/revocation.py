"""A revoked key or a disabled user loses the sockets it holds, not only its next requests.

A user's feed socket (`/ws/jobs/`) would otherwise go on telling whoever holds a revoked key about
every job of the user for as long as it stays open. The revocation is written into the user's feed,
which every open feed reads anyway; those opened with that credential close with 4401. A job's own
socket ends with its job.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from accounts.signals import access_revoked
from inference import streams

logger = logging.getLogger(__name__)


@receiver(access_revoked, dispatch_uid="inference.revocation")
def close_revoked_sockets(sender: Any, *, user_id: Any, key_prefix: str | None, **kwargs: Any) -> None:
    try:
        streams.announce_access_revoked(user_id, key_prefix)
    except streams.REDIS_UNREACHABLE:
        logger.warning("could not tell user %s's open sockets that a credential was revoked", user_id, exc_info=True)
