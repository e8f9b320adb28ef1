"""`/api/v1/models` (with each task's input schema and the model's limits) and `/api/v1/usage`."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Plan
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from tests.inference.api.helpers import CHAT

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(owner_key) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    return api


def test_it_lists_enabled_models_with_their_input_schema_and_limits(client, echo_model):
    AIModel.objects.create(slug="off", display_name="Off", task="chat", backend="echo", enabled=False)

    body = client.get("/api/v1/models").json()

    assert [model["id"] for model in body["data"]] == ["echo"]
    echo = body["data"][0]
    assert echo["limits"] == {"max_input_chars": 2000, "max_output_tokens": 500}
    assert echo["task"] == "chat"
    assert "messages" in echo["input_schema"]["required"]
    assert echo["input_schema"]["additionalProperties"] is False


def test_a_model_shows_its_task_schema_and_a_disabled_or_unknown_one_is_a_404(client, echo_model):
    AIModel.objects.create(slug="embed", display_name="E", task="embedding", backend="echo")
    AIModel.objects.create(slug="off", display_name="Off", task="chat", backend="echo", enabled=False)

    embed = client.get("/api/v1/models/embed").json()

    assert embed["task"] == "embedding"
    assert "input" in embed["input_schema"]["properties"]
    for slug in ("off", "nope"):
        response = client.get(f"/api/v1/models/{slug}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"


def test_usage_counts_tokens_per_day_and_jobs_by_status_against_the_plan(client, owner, outsider, echo_model):
    owner.plan = Plan.objects.create(name="team", concurrent_jobs=4, requests_per_minute=100, tokens_per_day=1000)
    owner.save()
    done = job_submit(user=owner, model="echo", input=CHAT)
    Job.objects.filter(id=done.id).update(status=JobStatus.SUCCEEDED, prompt_tokens=7, completion_tokens=5)
    # Queued: reserves its prompt (26 characters: ~7 tokens) and max_tokens.
    job_submit(user=owner, model="echo", input={**CHAT, "max_tokens": 40})
    theirs = job_submit(user=outsider, model="echo", input=CHAT)
    Job.objects.filter(id=theirs.id).update(status=JobStatus.SUCCEEDED, prompt_tokens=900, completion_tokens=900)

    body = client.get("/api/v1/usage", {"days": 3}).json()

    assert [day["date"] for day in body["daily"]] == sorted(day["date"] for day in body["daily"])
    assert len(body["daily"]) == 3
    assert body["daily"][-1] == {
        "date": body["period"]["end"],
        "jobs": 2,
        "prompt_tokens": 7,
        "completion_tokens": 5,
        "total_tokens": 12,
    }
    assert body["jobs_by_status"]["succeeded"] == 1
    assert body["jobs_by_status"]["queued"] == 1
    assert body["plan"] == {"name": "team", "concurrent_jobs": 4, "requests_per_minute": 100, "tokens_per_day": 1000}
    assert body["current"]["active_jobs"] == 1
    assert body["current"]["tokens_today"] == 12
    assert body["current"]["tokens_reserved"] == 7 + 40
    assert body["current"]["tokens_remaining_today"] == 1000 - 12 - 47


@pytest.mark.parametrize("days", ["0", "91", "x"])
def test_usage_refuses_a_bad_period(client, days):
    response = client.get("/api/v1/usage", {"days": days})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "days"
