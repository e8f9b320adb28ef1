"""Without Redis nothing can be queued: the API says so with a 503 and Retry-After, never a 500."""

from __future__ import annotations

import httpx
import pytest
import redis.exceptions

from inference.api.errors import exception_handler
from inference.models import Job
from tests.inference.api.helpers import CHAT, api, assert_error
from tests.support.processes import DaphneProcess, free_port


@pytest.fixture
def platform_without_redis(worker_env):
    """A daphne whose Redis is a port where nothing listens."""
    server = DaphneProcess({**worker_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}).start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", {"model": "echo", "input": CHAT}),
        ("/v1/chat/completions", {"model": "echo", **CHAT}),
    ],
)
def test_submitting_while_redis_is_down_is_a_503_with_retry_after(
    platform_without_redis, owner_key, echo_model, path, body
):
    with api(platform_without_redis.url, owner_key) as client:
        response = client.post(path, json=body)

    assert_error(response, 503, "service_unavailable")
    assert response.json()["error"]["type"] == "service_unavailable_error"
    assert int(response.headers["Retry-After"]) > 0
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "exc", [redis.exceptions.ConnectionError("refused"), redis.exceptions.TimeoutError("timed out")]
)
def test_the_handler_answers_a_redis_outage_with_503(exc):
    response = exception_handler(exc, {})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["error"]["code"] == "service_unavailable"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", ["/history/", "job"])
def test_a_users_history_pages_still_open_while_redis_is_down(platform_without_redis, client, owner, echo_model, page):
    from inference.services.jobs import job_build, job_store

    job = job_store(job_build(user=owner, model="echo", input=CHAT))  # stored, never queued
    client.force_login(owner)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    path = f"/history/{job.id}/" if page == "job" else page

    response = httpx.get(f"{platform_without_redis.url}{path}", cookies=cookies, timeout=30)

    assert response.status_code == 200
    assert 'data-feed-position=""' in response.text  # its live badges follow from when they connect
