"""Reads count against the caller's plan too: the same requests per minute, in a window of their own.

Job requests are counted where jobs are admitted (inference/services/admission.py); reads (lists,
details, models, usage, keys, deliveries) are counted here, so polling can never crowd out job
creation, nor the other way round, and nobody can hammer a search.
"""

from __future__ import annotations

import math

from rest_framework.throttling import BaseThrottle

from accounts.quotas import limits_for_user, request_rate_acquire


class PlanReadThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        self.retry_after: float | None = None
        user = request.user
        if request.method not in ("GET", "HEAD") or user is None or not user.is_authenticated:
            return True
        limit = limits_for_user(user=user).requests_per_minute
        if limit is None:
            return True
        self.retry_after = request_rate_acquire(user_id=user.pk, limit=limit, window="reads")
        return self.retry_after is None

    def wait(self) -> int | None:
        return None if self.retry_after is None else max(1, math.ceil(self.retry_after))
