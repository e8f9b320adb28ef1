"""An error written for operators (a server path, an upstream's reply) reaches only staff, through every door:
the job in the REST API, its events (live and replayed), the OpenAI-compatible answer and webhooks."""

import threading

import pytest

from inference import streams
from inference.job_errors import UNAVAILABLE_MESSAGE
from inference.models import AIModel, Job, JobStatus
from inference.services.events import job_replay_events
from inference.services.jobs import Usage, job_finish, job_start, job_submit
from tests.inference.api.helpers import CHAT, api
from tests.support.processes import wait_for
from webhooks.services import _payload

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_DETAIL = "The model file '/srv/models/secret/smollm2.gguf' does not exist."


def _fail(job: Job, code: str, message: str) -> Job:
    """End the job as a worker does when its backend fails."""
    job_start(job_id=job.id, attempt=job.attempt, worker="tests")
    job_finish(
        job_id=job.id,
        attempt=job.attempt,
        status=JobStatus.FAILED,
        usage=Usage(),
        error_code=code,
        error_message=message,
    )
    return Job.objects.get(id=job.id)


@pytest.fixture
def broken_job(owner, echo_model):
    """A job whose worker could not load its model."""
    return _fail(job_submit(user=owner, model="echo", input=CHAT), "model_unavailable", SERVER_DETAIL)


def test_the_owner_reads_a_plain_sentence_everywhere(live_server_url, owner_key, broken_job):
    assert broken_job.error_message == SERVER_DETAIL  # kept whole for operators
    with api(live_server_url, owner_key) as client:
        error = client.get(f"/api/v1/jobs/{broken_job.id}").json()["error"]
    assert error == {"code": "model_unavailable", "message": UNAVAILABLE_MESSAGE}

    live = [event.data for event in streams.read_events(broken_job.id) if event.type == "error"]
    replayed = [event.data for event in job_replay_events(broken_job) if event.type == "error"]
    assert live == replayed == [{"code": "model_unavailable", "message": UNAVAILABLE_MESSAGE}]
    assert _payload(broken_job, "completed")["data"]["error"]["message"] == UNAVAILABLE_MESSAGE


@pytest.mark.parametrize(
    ("code", "upstream_said"),
    [
        ("upstream_rate_limited", "The model server is rate limiting us: Rate limit reached in organization org-8Xq"),
        ("upstream_unavailable", "The model server failed (502): <html>gateway gw-3.internal.example</html>"),
        ("upstream_error", "The model server failed mid-stream: worker node-17 out of memory"),
    ],
)
def test_what_an_upstream_server_answered_us_is_for_operators(
    live_server_url, owner, owner_key, echo_model, code, upstream_said
):
    job = _fail(job_submit(user=owner, model="echo", input=CHAT), code, upstream_said)

    with api(live_server_url, owner_key) as client:
        error = client.get(f"/api/v1/jobs/{job.id}").json()["error"]

    assert error == {"code": code, "message": UNAVAILABLE_MESSAGE}


def test_staff_read_the_stored_error_through_the_api(live_server_url, owner, owner_key, broken_job):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])

    with api(live_server_url, owner_key) as client:
        error = client.get(f"/api/v1/jobs/{broken_job.id}").json()["error"]

    assert error["message"] == SERVER_DETAIL


def test_the_openai_compatible_answer_says_the_plain_sentence(live_server_url, owner, owner_key):
    AIModel.objects.create(slug="unserved", display_name="Unserved", task="chat", backend="echo", queue="nobody")
    answers = []

    def ask() -> None:
        body = {"model": "unserved", "messages": CHAT["messages"]}
        with api(live_server_url, owner_key) as client:
            answers.append(client.post("/v1/chat/completions", json=body, timeout=30))

    asking = threading.Thread(target=ask)
    asking.start()
    wait_for(lambda: Job.objects.filter(owner=owner).exists(), what="the request's job")
    _fail(Job.objects.get(owner=owner), "upstream_auth_failed", "refused our credentials (401): {'detail': 'sk-...'}")
    asking.join(timeout=30)

    assert answers[0].status_code == 500, answers[0].text
    assert answers[0].json()["error"]["message"] == UNAVAILABLE_MESSAGE
