"""Plans and the per-user request rate limiter.

A user's limits come from the plan an operator assigned, or from the default
in settings. The request rate is a sliding one-minute window kept in Redis by
one Lua script, so parallel requests cannot slip past it. Limits that depend
on jobs (concurrency, tokens per day) are checked where jobs are made
(inference/services/admission.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from accounts.models import Plan, User

DEFAULT_PLAN_NAME = "default"
WINDOW_SECONDS = 60

# KEYS[1]: the user's window (a sorted set of request ids scored by time).
# ARGV: now (ms), window (ms), limit, request id. Returns 0 when admitted,
# else the milliseconds until the oldest request leaves the window.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #oldest == 0 then return window end  -- a limit of 0 (a plan saved before plans refused it)
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


@dataclass(frozen=True)
class Limits:
    """The limits in force for one user; None means no limit."""

    plan: str
    concurrent_jobs: int | None
    requests_per_minute: int | None
    tokens_per_day: int | None


def _or_none(value: int) -> int | None:
    return value or None


def default_limits() -> Limits:
    return Limits(
        plan=DEFAULT_PLAN_NAME,
        concurrent_jobs=_or_none(settings.QUOTA_DEFAULT_CONCURRENT_JOBS),
        requests_per_minute=_or_none(settings.QUOTA_DEFAULT_REQUESTS_PER_MINUTE),
        tokens_per_day=_or_none(settings.QUOTA_DEFAULT_TOKENS_PER_DAY),
    )


def limits_of_plan(plan: Plan | None) -> Limits:
    if plan is None:
        return default_limits()
    return Limits(
        plan=plan.name,
        concurrent_jobs=plan.concurrent_jobs,
        requests_per_minute=plan.requests_per_minute,
        tokens_per_day=plan.tokens_per_day,
    )


def limits_for_user(*, user: User) -> Limits:
    """The user's plan, or the default plan when an operator assigned none.

    An API key's lookup loads the plan with its user (accounts.services): most calls read no row.
    """
    return limits_of_plan(user.plan)


def _key(user_id: int, window: str = "requests") -> str:
    return f"{settings.REDIS_KEY_PREFIX}:quota:{user_id}:{window}"


@lru_cache(maxsize=1)
def _window_script():
    from inference.streams import redis_client  # one Redis connection pool per process

    return redis_client().register_script(_SLIDING_WINDOW)


def request_rate_acquire(*, user_id: int, limit: int, window: str = "requests") -> float | None:
    """Count one request against `limit` per minute: None if admitted, else seconds until one is free.

    `window` names the sliding window: job requests and reads (lists, details) are counted apart.
    """
    now_ms = int(time.time() * 1000)
    wait_ms = int(
        _window_script()(keys=[_key(user_id, window)], args=[now_ms, WINDOW_SECONDS * 1000, limit, uuid.uuid4().hex])
    )
    return None if wait_ms == 0 else wait_ms / 1000


def requests_in_window(*, user_id: int) -> int:
    from inference.streams import redis_client

    now_ms = int(time.time() * 1000)
    return int(redis_client().zcount(_key(user_id), now_ms - WINDOW_SECONDS * 1000, "+inf"))
