"""Redis goes away under daphne while clients watch a job: each is told to come back, in one log line each."""

import threading

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from tests.support.processes import DaphneProcess, free_port, start_redis, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHAT = {"messages": [{"role": "user", "content": "a b c"}]}


@pytest.fixture
def daphne_on_own_redis(worker_env, tmp_path):
    """A daphne whose Redis (event logs, subscriptions) is this test's own, to stop at will."""
    port = free_port()
    redis_server = start_redis(port, tmp_path)
    server = DaphneProcess({**worker_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}).start()
    yield server, redis_server
    server.stop()
    redis_server.terminate()
    redis_server.wait(timeout=10)


def test_watchers_are_told_to_reconnect_when_redis_goes_away(daphne_on_own_redis, owner, owner_key, echo_model):
    server, redis_server = daphne_on_own_redis
    # On a queue no worker serves: the suite's shared worker, if it runs, would race the update
    # below, run the job to its end, and the watchers would get its ending instead of the outage.
    echo_model.queue = "nobody"
    echo_model.save(update_fields=["queue"])
    job = job_submit(user=owner, model="echo", input=CHAT)
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING)  # as if a worker had started it
    headers = {"Authorization": f"Bearer {owner_key}"}
    sse_lines: list[str] = []

    def watch_sse() -> None:
        url = f"{server.url}/api/v1/jobs/{job.id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            for line in response.iter_lines():  # raises if the stream is cut rather than ended
                sse_lines.append(line)

    sse = threading.Thread(target=watch_sse)
    with connect(f"{server.ws_url}/ws/jobs/{job.id}/", additional_headers=headers) as ws:
        sse.start()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)  # connected and following: nothing to say yet
        wait_for(lambda: sse_lines, what="the SSE watcher to connect")

        redis_server.terminate()
        redis_server.wait(timeout=10)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
    sse.join(timeout=20)

    assert closed.value.rcvd.code == 4503
    assert not sse.is_alive()
    assert sse_lines[-2:] == [": the event log cannot be reached; reconnect with Last-Event-ID", ""]
    wait_for(lambda: "job log subscription failed" in server.log_path.read_text(), what="daphne to report the outage")

    # Those that come back while Redis is still away are told the same.
    with (
        connect(f"{server.ws_url}/ws/jobs/{job.id}/?after=0", additional_headers=headers) as ws,
        pytest.raises(ConnectionClosed) as closed_again,
    ):
        ws.recv(timeout=20)
    assert closed_again.value.rcvd.code == 4503
    sse_lines.clear()
    watch_sse()
    assert sse_lines[-2:] == [": the event log cannot be reached; reconnect with Last-Event-ID", ""]
    log = server.log_path.read_text()
    assert f"stream of job {job.id} closed, Redis is unreachable: ConnectionError: " in log
    assert f"event stream of job {job.id} ended, Redis is unreachable: ConnectionError: " in log
    assert "job log subscription failed (ConnectionRefusedError" in log
    assert "Traceback" not in log, log
