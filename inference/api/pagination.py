"""Opaque, signed keyset cursors: stable under inserts, cheap at any depth.

A cursor names the last row of a page by its (created_at, id); the next page
is every row strictly after it in (-created_at, -id) order. Cursors are
signed, so a forged or mangled one is a 400 `invalid_cursor`, never a 500.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet

from inference.errors import DjinnError

_SALT = "djinn.api.cursor"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class InvalidCursor(DjinnError):
    status = 400
    code = "invalid_cursor"


def cursor_encode(row: Any, scope: str) -> str:
    return signing.dumps({"s": scope, "t": row.created_at.isoformat(), "i": str(row.pk)}, salt=_SALT, compress=True)


def cursor_decode(cursor: str, scope: str) -> tuple[datetime, str]:
    try:
        data = signing.loads(cursor, salt=_SALT)
        if data["s"] != scope:
            raise ValueError("cursor of another list")
        return datetime.fromisoformat(data["t"]), data["i"]
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        raise InvalidCursor("The cursor is not one this API returned.", param="cursor") from None


def page(queryset: QuerySet, *, cursor: str | None, limit: int, scope: str, pk_type=uuid.UUID) -> dict[str, Any]:
    """One page of `queryset` (ordered by -created_at, -pk) after `cursor`: rows, has_more, next_cursor."""
    ordered = queryset.order_by("-created_at", "-pk")
    if cursor:
        created_at, pk = cursor_decode(cursor, scope)
        try:
            pk_value = pk_type(pk)
        except ValueError:
            raise InvalidCursor("The cursor is not one this API returned.", param="cursor") from None
        ordered = ordered.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk_value))
    rows = list(ordered[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "rows": rows,
        "has_more": has_more,
        "next_cursor": cursor_encode(rows[-1], scope) if has_more else None,
    }
