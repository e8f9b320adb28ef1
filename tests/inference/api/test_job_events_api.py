"""Following a job (SSE and websocket) refuses a resume point it cannot use, in the error shape."""

from __future__ import annotations

import httpx
import pytest

from inference.models import AIModel
from inference.services.jobs import job_submit
from tests.inference.api.helpers import CHAT, api, assert_error, bearer
from tests.support.watchers import open_job_socket, watch_socket

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_BAD_REQUEST = 4400
TOO_BIG_FOR_REDIS = str(2**64)  # a stream id's sequence part is a 64-bit number


@pytest.fixture
def queued_job(db, owner):
    AIModel.objects.create(slug="idle", display_name="Idle", task="chat", backend="echo", queue="nobody-listens")
    return job_submit(user=owner, model="idle", input=CHAT)


@pytest.mark.parametrize("after", ["²", "\u0661", "-1", "1.5", "1e3", TOO_BIG_FOR_REDIS, "1" * 19])
def test_sse_refuses_an_after_that_is_not_a_small_whole_number(live_server_url, owner_key, queued_job, after):
    with api(live_server_url, owner_key) as client:
        response = client.get(f"/api/v1/jobs/{queued_job.id}/events", params={"after": after})
    assert_error(response, 400, "invalid_after", "after")


@pytest.mark.parametrize("last_event_id", [b"\xb2", "²".encode(), TOO_BIG_FOR_REDIS.encode()])
def test_sse_refuses_a_last_event_id_that_is_not_a_small_whole_number(
    live_server_url, owner_key, queued_job, last_event_id
):
    headers = [*bearer(owner_key).items(), ("Last-Event-ID", last_event_id)]
    with httpx.Client(base_url=live_server_url, timeout=30) as client:
        response = client.get(f"/api/v1/jobs/{queued_job.id}/events", headers=headers)
    assert_error(response, 400, "invalid_after", "after")


def test_sse_resumes_from_the_largest_position_it_accepts(live_server_url, owner_key, queued_job):
    url = f"{live_server_url}/api/v1/jobs/{queued_job.id}/events"
    with httpx.stream("GET", url, params={"after": "9" * 18}, headers=bearer(owner_key), timeout=30) as response:
        first = next(response.iter_lines())
    assert response.status_code == 200
    assert first.startswith("retry:")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_sse_answers_another_method_with_a_405_in_the_error_shape(live_server_url, owner_key, queued_job, method):
    with api(live_server_url, owner_key) as client:
        response = client.request(method, f"/api/v1/jobs/{queued_job.id}/events")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize("after", ["²", "-1", "", TOO_BIG_FOR_REDIS, "1" * 19])
def test_the_websocket_closes_with_4400_on_an_after_it_cannot_use(daphne_server, owner_key, queued_job, after):
    with open_job_socket(daphne_server, queued_job.id, owner_key, after=after) as ws:
        watch = watch_socket(ws)
    assert watch.close_code == CLOSE_BAD_REQUEST
    assert watch.events == []
