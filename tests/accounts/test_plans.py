"""Plans: an operator's assignment wins, the settings' default applies otherwise."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Plan
from accounts.quotas import limits_for_user, request_rate_acquire, requests_in_window

pytestmark = pytest.mark.django_db


def test_a_user_without_a_plan_gets_the_default_from_settings(owner, settings):
    settings.QUOTA_DEFAULT_CONCURRENT_JOBS = 3
    settings.QUOTA_DEFAULT_REQUESTS_PER_MINUTE = 0
    settings.QUOTA_DEFAULT_TOKENS_PER_DAY = 1000

    limits = limits_for_user(user=owner)

    assert (limits.plan, limits.concurrent_jobs, limits.requests_per_minute, limits.tokens_per_day) == (
        "default",
        3,
        None,
        1000,
    )


def test_an_assigned_plan_replaces_the_default(owner):
    owner.plan = Plan.objects.create(name="pro", concurrent_jobs=50, requests_per_minute=None, tokens_per_day=10**9)
    owner.save()

    limits = limits_for_user(user=owner)

    assert (limits.plan, limits.concurrent_jobs, limits.requests_per_minute, limits.tokens_per_day) == (
        "pro",
        50,
        None,
        10**9,
    )


def test_the_request_window_admits_the_limit_then_says_how_long_to_wait(owner):
    admitted = [request_rate_acquire(user_id=owner.pk, limit=3) for _ in range(3)]
    refused = request_rate_acquire(user_id=owner.pk, limit=3)

    assert admitted == [None, None, None]
    assert refused is not None
    assert 0 < refused <= 60
    assert requests_in_window(user_id=owner.pk) == 3


def test_a_plan_refuses_a_limit_of_zero_and_says_what_empty_means():
    plan = Plan(name="blocked", concurrent_jobs=0, requests_per_minute=0, tokens_per_day=0)

    with pytest.raises(ValidationError) as refused:
        plan.full_clean()

    assert set(refused.value.message_dict) == {"concurrent_jobs", "requests_per_minute", "tokens_per_day"}
    assert "empty for no limit" in Plan._meta.get_field("requests_per_minute").help_text


def test_a_zero_request_limit_saved_before_plans_refused_it_is_a_429_not_an_error(owner):
    # The window was empty: the script looked up the oldest request in it, found none, and failed.
    assert request_rate_acquire(user_id=owner.pk, limit=0) == 60
