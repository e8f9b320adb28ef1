"""The audit log's one writer: every operator action calls `audit_record`."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from ops.models import AuditEntry

logger = logging.getLogger("djinn.audit")


def audit_record(*, actor, action: str, target: models.Model | None = None, details: dict[str, Any] | None = None):
    """Record that `actor` did `action` to `target`; returns the stored AuditEntry."""
    entry = AuditEntry(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_username=getattr(actor, "get_username", lambda: "")() if actor is not None else "",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        details=details or {},
    )
    entry.full_clean()
    entry.save()
    logger.info(
        "audit: %s %s %s:%s", entry.actor_username, action, entry.target_type, entry.target_id, extra={"audit": True}
    )
    return entry
