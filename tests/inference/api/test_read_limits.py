"""Reads count against the plan's requests per minute in a window of their own, answered with a 429."""

from __future__ import annotations

import pytest

from accounts.models import Plan
from inference.models import AIModel, Job
from tests.inference.api.helpers import CHAT, api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def idle_model(db):
    return AIModel.objects.create(slug="idle", display_name="Idle", task="chat", backend="echo", queue="nobody-listens")


def test_reads_past_the_plan_rate_get_a_429_and_job_requests_still_pass(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="three-a-minute", requests_per_minute=3)
    owner.save()

    with api(live_server_url, owner_key) as client:
        reads = [client.get(path) for path in ("/api/v1/jobs", "/api/v1/models", "/api/v1/usage", "/api/v1/jobs")]
        created = client.post("/api/v1/jobs", json={"model": "idle", "input": CHAT})

    assert [r.status_code for r in reads[:3]] == [200, 200, 200]
    assert_error(reads[3], 429, "rate_limited")
    assert 1 <= int(reads[3].headers["Retry-After"]) <= 60
    assert created.status_code == 202, created.text  # job requests have their own window
    assert Job.objects.filter(owner=owner).count() == 1


def test_another_users_reads_do_not_count_against_mine(live_server_url, owner_key, outsider_key, owner):
    owner.plan = Plan.objects.create(name="two-a-minute", requests_per_minute=2)
    owner.save()

    with api(live_server_url, outsider_key) as theirs:
        for _ in range(5):
            theirs.get("/api/v1/models")
    with api(live_server_url, owner_key) as mine:
        assert [mine.get("/api/v1/models").status_code for _ in range(2)] == [200, 200]
