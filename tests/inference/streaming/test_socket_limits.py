"""One user cannot hold more websockets on a daphne than WEBSOCKETS_PER_USER: others keep theirs."""

import contextlib

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
