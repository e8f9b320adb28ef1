"""A job that fails answers the OpenAI facade with a status that says whose fault it was.

The official SDK retries every 5xx, and each retry is a new job: a failure the
caller's input caused must be a 400, which it does not retry.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from inference.models import AIModel, Job, JobStatus
from tests.inference.api.helpers import bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

HELLO = [{"role": "user", "content": "hello"}]


def failing_model(slug: str, code: str, task: str = "chat") -> AIModel:
    return AIModel.objects.create(slug=slug, display_name=slug, task=task, backend="echo", config={"fail_with": code})


@pytest.fixture
def sdk(live_server_url, owner_key) -> openai.OpenAI:
    """The SDK as integrators use it: with its default retries."""
    return openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=owner_key, timeout=30)


@pytest.mark.parametrize("code", ["context_length_exceeded", "invalid_input", "upstream_bad_request"])
def test_a_failure_the_input_caused_is_a_400_the_sdk_does_not_retry(sdk, owner, celery_worker, code):
    failing_model("too-long", code)

    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model="too-long", messages=HELLO)

    assert error.value.code == code
    assert error.value.param == "messages"
    assert error.value.body["type"] == "invalid_request_error"
    assert Job.objects.filter(owner=owner).count() == 1
    job = Job.objects.get(owner=owner)
    assert job.status == JobStatus.FAILED
    assert job.prompt_tokens == job.completion_tokens == 0  # refused before any token: not charged


def test_a_completion_whose_prompt_is_too_long_names_the_prompt(sdk, celery_worker):
    failing_model("too-long", "context_length_exceeded", task="completion")

    with pytest.raises(openai.BadRequestError) as error:
        sdk.completions.create(model="too-long", prompt="hello")

    assert (error.value.code, error.value.param) == ("context_length_exceeded", "prompt")


def test_a_model_that_cannot_load_is_a_503_with_retry_after(live_server_url, owner_key, celery_worker):
    failing_model("broken", "model_unavailable")
    body = {"model": "broken", "messages": HELLO}

    response = httpx.post(f"{live_server_url}/v1/chat/completions", json=body, headers=bearer(owner_key), timeout=30)

    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "model_unavailable"
    assert response.json()["error"]["type"] == "service_unavailable_error"


def test_a_fault_of_the_backend_stays_a_500(live_server_url, owner_key, celery_worker):
    failing_model("broken", "generation_failed")
    body = {"model": "broken", "messages": HELLO}

    response = httpx.post(f"{live_server_url}/v1/chat/completions", json=body, headers=bearer(owner_key), timeout=30)

    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "generation_failed"


def test_a_streamed_call_ends_with_the_same_error(live_server_url, owner_key, celery_worker):
    failing_model("too-long", "context_length_exceeded")
    body = {"model": "too-long", "messages": HELLO, "stream": True}

    with httpx.stream(
        "POST", f"{live_server_url}/v1/chat/completions", json=body, headers=bearer(owner_key), timeout=30
    ) as response:
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line]

    error = json.loads(lines[-1])["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
