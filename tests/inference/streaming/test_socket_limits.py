"""One user cannot hold more websockets on a daphne than WEBSOCKETS_PER_USER: others keep theirs."""

import contextlib

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from inference.models import AIModel
from inference.services.jobs import job_submit
from tests.support.processes import DaphneProcess, wait_for
from tests.support.watchers import watch_socket

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 3


@pytest.fixture(scope="module")
def limited_daphne(worker_env):
    server = DaphneProcess({**worker_env, "WEBSOCKETS_PER_USER": str(LIMIT)}).start()
    yield server
    server.stop()


def _open(server, path: str, key: str):
    return connect(f"{server.ws_url}{path}", additional_headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def parked_model(db):
    # On a queue no worker serves: its jobs stay queued and their sockets open (a worker that other
    # tests left running would end them, and give their sockets back).
    return AIModel.objects.create(slug="parked", display_name="Parked", task="chat", backend="echo", queue="parked")


def test_a_user_past_the_limit_is_refused_with_4429_and_others_are_not(
    limited_daphne, owner, owner_key, outsider, outsider_key, parked_model
):
    hi = {"messages": [{"role": "user", "content": "hi"}]}
    job, theirs = (
        job_submit(user=owner, model=parked_model, input=hi),
        job_submit(user=outsider, model=parked_model, input=hi),
    )

    with contextlib.ExitStack() as held:
        # Sockets refused for another reason hold nothing: a stranger's job, a bad position.
        for path in (f"/ws/jobs/{theirs.id}/", f"/ws/jobs/{job.id}/?after=x"):
            with _open(limited_daphne, path, owner_key) as refused:
                assert watch_socket(refused, timeout=10).close_code in (4404, 4400)
        tabs = [held.enter_context(_open(limited_daphne, "/ws/jobs/", owner_key)) for _ in range(LIMIT - 1)]
        held.enter_context(_open(limited_daphne, f"/ws/jobs/{job.id}/", owner_key)).recv(timeout=10)  # its queued
        with _open(limited_daphne, f"/ws/jobs/{job.id}/", owner_key) as one_too_many:
            refusal = watch_socket(one_too_many, timeout=10)
        with _open(limited_daphne, "/ws/jobs/", owner_key) as one_too_many:
            feed_refusal = watch_socket(one_too_many, timeout=10)
        with _open(limited_daphne, f"/ws/jobs/{theirs.id}/", outsider_key) as other_user:
            others_first = other_user.recv(timeout=10)

        tabs[0].close()  # a socket that closes is given back, once daphne has seen it go

        def admitted() -> bool:
            with _open(limited_daphne, "/ws/jobs/", owner_key) as reopened:
                try:
                    reopened.recv(timeout=0.5)  # an admitted feed is open and quiet
                except TimeoutError:
                    return True
                except ConnectionClosed:
                    return False
            raise AssertionError("a quiet feed spoke")

        wait_for(admitted, timeout=10, what="the closed socket to be given back")

    assert (refusal.events, refusal.close_code) == ([], 4429)
    assert feed_refusal.close_code == 4429
    assert '"queued"' in others_first


def _sse(server, job, key: str) -> httpx.Response:
    """An event stream opened and left open: its headers are in, its body unread."""
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return client.send(client.build_request("GET", f"/api/v1/jobs/{job.id}/events"), stream=True)


def test_event_streams_count_with_websockets_and_are_given_back_when_they_end(
    limited_daphne, owner, owner_key, parked_model
):
    job = job_submit(user=owner, model=parked_model, input={"messages": [{"role": "user", "content": "hi"}]})

    with _open(limited_daphne, "/ws/jobs/", owner_key):
        streams = [_sse(limited_daphne, job, owner_key) for _ in range(LIMIT - 1)]
        assert [stream.status_code for stream in streams] == [200] * (LIMIT - 1)
        one_too_many = _sse(limited_daphne, job, owner_key)
        one_too_many.read()
        with _open(limited_daphne, "/ws/jobs/", owner_key) as socket_too_many:
            socket_refusal = watch_socket(socket_too_many, timeout=10)

        streams[0].close()  # a client that leaves gives its stream back, once daphne has seen it go

        def admitted() -> bool:
            again = _sse(limited_daphne, job, owner_key)
            again.close()
            return again.status_code == 200

        wait_for(admitted, timeout=10, what="the closed stream to be given back")
        for stream in streams[1:]:
            stream.close()

    assert one_too_many.status_code == 429
    assert one_too_many.headers["Retry-After"] == "5"
    assert one_too_many.json()["error"]["code"] == "too_many_streams"
    assert socket_refusal.close_code == 4429


def test_opening_an_event_stream_counts_as_a_read(live_server_url, owner, owner_key, echo_model):
    from accounts.models import Plan
    from inference.models import Job, JobStatus

    owner.plan = Plan.objects.create(name="two reads", requests_per_minute=2)
    owner.save()
    job = job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})
    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED, output_text="hi")  # its stream ends at once
    headers = {"Authorization": f"Bearer {owner_key}"}

    answers = [httpx.get(f"{live_server_url}/api/v1/jobs/{job.id}/events", headers=headers) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert answers[2].json()["error"]["code"] == "rate_limited"
