"""UUID primary keys in admin lists: shown by their first characters, found by them too.

A whole UUID took four lines of a list column; operators read and type the first eight
characters, as git shows commits.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q
from django.utils.html import format_html
from django.utils.safestring import SafeString

SHOWN = 8


def short_id(value: Any) -> SafeString:
    """The id's first characters, the whole id on hover."""
    return format_html('<code title="{}">{}</code>', value, str(value)[:SHOWN])


def id_prefix_match(search_term: str, field: str = "id") -> Q | None:
    """Rows whose UUID `field` starts with the searched hex (4 to 31 digits): a range of the key."""
    prefix = search_term.strip().lower().replace("-", "")
    if not 4 <= len(prefix) < 32 or prefix.strip("0123456789abcdef"):
        return None
    low, high = uuid.UUID(prefix.ljust(32, "0")), uuid.UUID(prefix.ljust(32, "f"))
    return Q(**{f"{field}__range": (low, high)})
