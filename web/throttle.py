"""Counting in Redis what the web pages let anyone do: failed log-ins per username and address
(after a few, that pair waits), and sign-ups and password-reset mails per address or mailbox."""

from __future__ import annotations

import hashlib

from django.conf import settings

from inference.streams import redis_client

MAX_FAILURES = 5
WINDOW_SECONDS = 300


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()[:32]
    return f"{settings.REDIS_KEY_PREFIX}:web:login-failures:{digest}"


def login_retry_after(*, username: str, address: str) -> int | None:
    """Seconds until this username may try again from this address, or None if it may now."""
    client = redis_client()
    key = _key(username, address)
    failures = int(client.get(key) or 0)
    if failures < MAX_FAILURES:
        return None
    return max(1, int(client.ttl(key)))


def login_failed(*, username: str, address: str) -> None:
    client = redis_client()
    key = _key(username, address)
    with client.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS, nx=True)
        pipe.execute()


def login_succeeded(*, username: str, address: str) -> None:
    redis_client().delete(_key(username, address))


HOUR = 3600


def attempt(*, action: str, subject: str, limit: int, window_seconds: int = HOUR) -> int | None:
    """Count one `action` by `subject`; the seconds to wait when that is over `limit` in the window."""
    digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]
    key = f"{settings.REDIS_KEY_PREFIX}:web:{action}:{digest}"
    with redis_client().pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=True)
        pipe.ttl(key)
        count, _, ttl = pipe.execute()
    return max(1, int(ttl)) if count > limit else None
