"""daphne killed in the middle of a stream: the job goes on in its worker, and every kind of watcher
resumes on the restarted server from the last event it saw, each event exactly once.

The event log lives in Redis and the job in its worker: a server process holds nothing a watcher
needs but its connection. Four watchers are cut by one crash: a websocket, an SSE stream, the
streamed submit that created the job, and the owner's feed of status changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from inference.models import Job, JobStatus
from tests.reliability.paced_jobs import slow_echo_model, wait_finished, wait_streaming
from tests.support.processes import DaphneProcess
from tests.support.watchers import Watch, open_job_socket, watch_job, watch_socket, watch_sse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUE = "daphne-crash"
CHAT = {"messages": [{"role": "user", "content": "one two three four five"}]}


@pytest.fixture
def slow_model(db):
    # Ten seconds of answer: the server is back (a second or two) long before it ends, so the
    # watchers come back to a live tail, not only to a replay.
    return slow_echo_model(queue=QUEUE, tokens=400, tokens_per_second=40, max_output_tokens=500)


@pytest.fixture
def server(worker_env):
    server = DaphneProcess(worker_env).start()
    yield server
    server.stop()


def _sse_events(lines: Iterator[str], watch: Watch) -> bool:
    """Append each event of an SSE body to `watch`; False if the connection was cut before the body ended."""
    data: list[str] = []
    try:
        for line in lines:
            if line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and data:
                watch.events.append(json.loads("\n".join(data)))
                data = []
    except httpx.TransportError:
        return False
    return True


def _feed_changes(ws, job: Job, until: set[str] | None = None) -> tuple[list[dict], bool]:
    """The feed's changes of `job` until one reaches a status in `until`; whether the connection was cut."""
    changes = []
    try:
        while until is None or not changes or changes[-1]["status"] not in until:
            change = json.loads(ws.recv(timeout=30))
            if change["job"] == str(job.id):
                changes.append(change)
    except ConnectionClosed as closed:
        return changes, closed.rcvd is None
    return changes, False


def _assert_exactly_once(watch: Watch, job: Job) -> None:
    assert watch.seqs == list(range(1, len(watch.seqs) + 1)), "every event once, in order, across the crash"
    assert watch.events[-1]["type"] == "done"
    assert watch.text == job.output_text


def test_every_watcher_resumes_on_the_restarted_server_with_each_event_once(
    start_worker, server, owner, owner_key, slow_model
):
    start_worker(QUEUE)
    auth = {"Authorization": f"Bearer {owner_key}"}
    with (
        connect(f"{server.ws_url}/ws/jobs/", additional_headers=auth) as feed,  # an open tab, before the job
        httpx.Client(base_url=server.url, headers=auth, timeout=30) as http,
        http.stream("POST", "/api/v1/jobs", json={"model": slow_model.slug, "input": CHAT, "stream": True}) as submit,
    ):
        assert submit.status_code == 200, submit.read()
        job = Job.objects.get(id=submit.headers["X-Djinn-Job-Id"])
        submitted = Watch()
        submit_lines = submit.iter_lines()
        with (
            open_job_socket(server, job.id, owner_key) as ws,
            http.stream("GET", f"/api/v1/jobs/{job.id}/events") as sse,
        ):
            wait_streaming(job)
            server.kill()
            # What each had in flight when the server died, until its connection drops.
            socket_before = watch_socket(ws, timeout=30)
            sse_before = Watch()
            sse_ended = _sse_events(sse.iter_lines(), sse_before)
        submit_ended = _sse_events(submit_lines, submitted)
        feed_before, feed_cut = _feed_changes(feed, job)

    server.start()  # the same address, as a supervisor restarts it
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING, "the job should outlive the server, still streaming when watchers return"
    with (
        connect(f"{server.ws_url}/ws/jobs/?after={feed_before[-1]['position']}", additional_headers=auth) as feed,
        ThreadPoolExecutor(3) as watchers,
    ):
        socket_resumed = watchers.submit(watch_job, server, job.id, owner_key, after=socket_before.seqs[-1])
        sse_resumed = watchers.submit(watch_sse, server, job.id, owner_key, last_event_id=sse_before.seqs[-1])
        # The streamed submit's client resumes on the job's events, as its documentation says.
        submit_resumed = watchers.submit(watch_sse, server, job.id, owner_key, last_event_id=submitted.seqs[-1])
        feed_after, _ = _feed_changes(feed, job, until={JobStatus.SUCCEEDED})
    socket_after = socket_resumed.result()
    _, sse_after = sse_resumed.result()
    _, submitted_after = submit_resumed.result()

    job = wait_finished(job)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1), "the worker never noticed the crash"
    # Each was cut, not closed: a clean end would mean the server finished the stream, not the crash.
    assert socket_before.close_code is None
    assert (sse_ended, submit_ended, feed_cut) == (False, False, True)
    assert socket_after.close_code == 1000
    for before, after in ((socket_before, socket_after), (sse_before, sse_after), (submitted, submitted_after)):
        assert before.events, "each watcher had events before the crash"
        assert before.events[-1]["type"] != "done", "and the crash cut it mid-stream"
        _assert_exactly_once(Watch(events=before.events + after.events), job)
    assert [change["status"] for change in feed_before] == [JobStatus.QUEUED, JobStatus.RUNNING]
    assert [change["status"] for change in feed_after] == [JobStatus.SUCCEEDED]
