"""The jobs API over HTTP against a real daphne: submit, wait, read, cancel, list."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import RequestFactory
from django.urls import set_script_prefix

from inference.api.serializers import job_urls
from inference.api.waiting import preferred_wait
from inference.models import AIModel, Job, JobClient, JobStatus
from inference.services.jobs import job_submit
from tests.inference.api.helpers import CHAT, api, assert_error
from tests.support.watchers import watch_sse

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_ANSWER = "hello there general kenobi"  # the echo backend's answer to CHAT: its 4 words


@pytest.fixture
def idle_model(db):
    """A chat model on a queue no worker listens to: its jobs stay queued."""
    return AIModel.objects.create(
        slug="idle", display_name="Idle", task="chat", backend="echo", queue="nobody-listens", max_output_tokens=50
    )


def test_it_accepts_a_job_with_202_and_the_urls_to_follow_it(live_server_url, owner_key, owner, idle_model):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "idle", "input": CHAT})

    assert response.status_code == 202, response.text
    body = response.json()
    job = Job.objects.get(id=body["id"])
    assert (job.owner, job.client, job.status) == (owner, JobClient.REST, JobStatus.QUEUED)
    assert body["status"] == "queued"
    assert body["urls"]["self"] == f"{live_server_url}/api/v1/jobs/{job.id}"
    assert body["urls"]["events"] == f"{live_server_url}/api/v1/jobs/{job.id}/events"
    assert body["urls"]["cancel"] == f"{live_server_url}/api/v1/jobs/{job.id}/cancel"
    assert body["urls"]["websocket"] == f"{live_server_url.replace('http', 'ws', 1)}/ws/jobs/{job.id}/"


def test_job_urls_follow_the_script_prefix_and_the_scheme(settings):
    settings.ALLOWED_HOSTS = ["djinn.example"]
    job_id = uuid.uuid4()
    request = RequestFactory().get("/", HTTP_HOST="djinn.example", secure=True)
    set_script_prefix("/djinn/")
    try:
        behind_a_prefix = job_urls(job_id, request)
    finally:
        set_script_prefix("/")

    assert behind_a_prefix == {
        "self": f"https://djinn.example/djinn/api/v1/jobs/{job_id}",
        "events": f"https://djinn.example/djinn/api/v1/jobs/{job_id}/events",
        "cancel": f"https://djinn.example/djinn/api/v1/jobs/{job_id}/cancel",
        "websocket": f"wss://djinn.example/ws/jobs/{job_id}/",
    }
    assert job_urls(job_id) == {
        "self": f"/api/v1/jobs/{job_id}",
        "events": f"/api/v1/jobs/{job_id}/events",
        "cancel": f"/api/v1/jobs/{job_id}/cancel",
        "websocket": f"/ws/jobs/{job_id}/",
    }


def test_prefer_wait_answers_with_the_finished_job(live_server_url, owner_key, celery_worker, echo_model):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "echo", "input": CHAT}, headers={"Prefer": "wait=20"})

    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=20"
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["output"]["text"] == "hello there general kenobi"
    assert body["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("max_tokens", "text", "finish_reason"),
    [(2, "hello there", "length"), (4, "hello there general kenobi", "length"), (None, CHAT_ANSWER, "stop")],
)
def test_a_finished_chat_says_whether_its_max_tokens_cut_it_short(
    daphne_server, owner_key, celery_worker, echo_model, max_tokens, text, finish_reason
):
    chat = CHAT if max_tokens is None else {**CHAT, "max_tokens": max_tokens}
    with api(daphne_server.url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "echo", "input": chat}, headers={"Prefer": "wait=20"})
    _, watch = watch_sse(daphne_server, response.json()["id"], owner_key)

    assert response.json()["output"] == {"text": text, "data": None, "finish_reason": finish_reason}
    done = watch.events[-1]
    assert (done["type"], done["data"]["finish_reason"]) == ("done", finish_reason)  # as the worker logged it


def test_prefer_wait_gives_up_after_n_seconds_with_the_queued_job(live_server_url, owner_key, idle_model):
    started = time.monotonic()
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "idle", "input": CHAT}, headers={"Prefer": "wait=1"})

    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "wait=1"
    assert response.json()["status"] == "queued"
    assert 0.9 < time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("wait=5", 5), ("respond-async, wait=10", 10), ("wait=999", 60), ("handling=lenient", None), ("wait=x", None)],
)
def test_prefer_wait_is_read_per_rfc_7240_and_capped(header, seconds, settings):
    settings.API_PREFER_WAIT_MAX_SECONDS = 60
    assert preferred_wait(header) == seconds


def test_it_shows_and_cancels_the_owners_job(live_server_url, owner_key, owner, idle_model):
    job = job_submit(user=owner, model="idle", input=CHAT)
    with api(live_server_url, owner_key) as client:
        shown = client.get(f"/api/v1/jobs/{job.id}")
        canceled = client.post(f"/api/v1/jobs/{job.id}/cancel")

    assert shown.status_code == 200
    assert shown.json()["id"] == str(job.id)
    assert canceled.status_code == 202
    assert canceled.json()["status"] == "canceled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED


def test_another_users_job_is_a_404_everywhere(live_server_url, owner, outsider_key, idle_model):
    job = job_submit(user=owner, model="idle", input=CHAT)
    with api(live_server_url, outsider_key) as client:
        shown = client.get(f"/api/v1/jobs/{job.id}")
        canceled = client.post(f"/api/v1/jobs/{job.id}/cancel")
        listed = client.get("/api/v1/jobs")
        missing = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")

    assert_error(shown, 404, "job_not_found")
    assert_error(canceled, 404, "job_not_found")
    assert shown.json() == missing.json()
    assert listed.json()["data"] == []
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_it_lists_jobs_newest_first_in_pages_with_an_opaque_cursor(live_server_url, owner_key, owner, idle_model):
    jobs = [job_submit(user=owner, model="idle", input=CHAT) for _ in range(5)]
    expected = [str(job.id) for job in reversed(jobs)]

    seen, cursor = [], None
    with api(live_server_url, owner_key) as client:
        for _ in range(3):
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/v1/jobs", params=params).json()
            seen += [job["id"] for job in body["data"]]
            cursor = body["next_cursor"]
            if not body["has_more"]:
                break

    assert seen == expected
    assert cursor is None


@pytest.mark.parametrize("cursor", ["garbage", "eyJ0IjoiMjAyNi0wMS0wMSJ9", "a" * 500])
def test_a_bad_cursor_is_a_400_with_a_stable_code(live_server_url, owner_key, cursor):
    with api(live_server_url, owner_key) as client:
        response = client.get("/api/v1/jobs", params={"cursor": cursor})
    assert_error(response, 400, "invalid_cursor", "cursor")


def test_it_filters_jobs_by_status_model_time_and_text(live_server_url, owner_key, owner, idle_model, echo_model):
    apples = job_submit(user=owner, model="idle", input={"messages": [{"role": "user", "content": "green apples"}]})
    pears = job_submit(user=owner, model="echo", input={"messages": [{"role": "user", "content": "ripe pears"}]})
    Job.objects.filter(id=pears.id).update(status=JobStatus.CANCELED)

    def ids(**params) -> set[str]:
        with api(live_server_url, owner_key) as client:
            response = client.get("/api/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return {job["id"] for job in response.json()["data"]}

    assert ids(status="queued") == {str(apples.id)}
    assert ids(status="queued,canceled") == {str(apples.id), str(pears.id)}
    assert ids(model="echo") == {str(pears.id)}
    assert ids(q="APPLES") == {str(apples.id)}
    assert ids(created_after=pears.created_at.isoformat()) == {str(pears.id)}
    assert ids(created_before=pears.created_at.isoformat()) == {str(apples.id)}


def test_text_search_looks_in_what_was_said_not_in_the_json_around_it(live_server_url, owner_key, owner, idle_model):
    said = 'She said "café", then\nleft'
    job = job_submit(user=owner, model="idle", input={"messages": [{"role": "user", "content": said}]})

    def found(q: str) -> bool:
        with api(live_server_url, owner_key) as client:
            return [item["id"] for item in client.get("/api/v1/jobs", params={"q": q}).json()["data"]] == [str(job.id)]

    assert all(found(q) for q in ('"café"', "CAFÉ", "then\nleft"))  # quotes, accents, lines as typed
    assert not any(found(q) for q in ("role", "messages", "seed", "max_tokens", "user"))  # keys and the role


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            {"status": "sleeping"},
            "invalid_choice",
            'status: Give one or more of queued, running, succeeded, failed, canceled, expired; not "sleeping".',
        ),
        ({"limit": "500"}, "max_value", "limit: Give a whole number from 1 to 100."),
        ({"limit": "0"}, "min_value", "limit: Give a whole number from 1 to 100."),
        ({"limit": "ten"}, "invalid", "limit: Give a whole number from 1 to 100."),
        (
            {"created_after": "yesterday"},
            "invalid",
            "created_after: Give a date and time in ISO 8601, such as 2026-01-31T09:30:00Z.",
        ),
    ],
)
def test_a_filter_that_is_not_understood_is_a_400_saying_what_to_give(
    live_server_url, owner_key, params, code, message
):
    with api(live_server_url, owner_key) as client:
        response = client.get("/api/v1/jobs", params=params)
    error = assert_error(response, 400, code, message.split(":")[0])
    assert error["message"] == message
