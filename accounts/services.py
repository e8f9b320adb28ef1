"""Services for accounts: API keys are created, checked and revoked here only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.signals import access_revoked
from inference.precompiled import PrecompiledLookup

KEY_SCHEME = "djn"
PREFIX_BYTES = 6
SECRET_BYTES = 32
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly created key: `plaintext` exists only here, shown once."""

    api_key: ApiKey
    plaintext: str


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, user: User, name: str = "") -> IssuedApiKey:
    """Create a key for `user`; the plaintext is returned once and never stored."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    api_key = ApiKey(user=user, name=name.strip(), prefix=prefix, secret_hash=_hash_secret(secret))
    api_key.full_clean()
    api_key.save()
    return IssuedApiKey(api_key=api_key, plaintext=f"{KEY_SCHEME}_{prefix}_{secret}")


# Every API request runs this lookup; the plan comes along because admission reads it.
_api_key_by_prefix = PrecompiledLookup(lambda prefix: ApiKey.objects.select_related("user__plan").filter(prefix=prefix))


def _key_parts(plaintext: str) -> tuple[str, str] | None:
    """(prefix, secret) of a key as issued, `djn_<prefix>_<secret>`; None when it is not one."""
    scheme, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    return (prefix, secret) if scheme == KEY_SCHEME and prefix and secret else None


def api_key_prefix(plaintext: str) -> str | None:
    """The prefix naming the key `plaintext` claims to be (unchecked), None when it is not a key."""
    parts = _key_parts(plaintext)
    return parts[0] if parts else None


def api_key_authenticate(*, plaintext: str) -> ApiKey | None:
    """The active key matching `plaintext`, or None. Malformed keys are just None."""
    parts = _key_parts(plaintext)
    if parts is None:
        return None
    prefix, secret = parts
    api_key = _api_key_by_prefix(prefix)
    if api_key is None:
        # Spend the same hash-and-compare time as a real miss would.
        hmac.compare_digest(_hash_secret(secret), "0" * 64)
        return None
    if not hmac.compare_digest(_hash_secret(secret), api_key.secret_hash) or not api_key.is_active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key at once, sockets it holds open included; revoking twice keeps the first time."""
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        user_id, prefix = api_key.user_id, api_key.prefix
        transaction.on_commit(
            lambda: access_revoked.send(sender=ApiKey, user_id=user_id, key_prefix=prefix), robust=True
        )
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
