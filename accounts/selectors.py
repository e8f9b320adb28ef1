"""Reads of account data. A key that is missing and a key of someone else's look the same (404)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, User
from inference.errors import NotFound


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_key_get_for_user(*, user: User, key_id: int | str) -> ApiKey:
    """The user's key `key_id`, or NotFound whether it is missing or someone else's."""
    key = str(key_id)
    well_formed = key.isascii() and key.isdigit() and len(key) < 19
    api_key = api_keys_for_user(user=user).filter(pk=int(key)).first() if well_formed else None
    if api_key is None:
        raise NotFound("No such API key.", code="api_key_not_found")
    return api_key
