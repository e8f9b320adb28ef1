"""Job streams over real websockets and SSE, from a real daphne, fed by a real worker."""

import asyncio
import contextlib
import json
import os
import random
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest
from django.db import connections
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from inference import streams
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from tests.support.processes import wait_for
from tests.support.watchers import open_job_socket, submit_streamed, watch_job, watch_socket, watch_sse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

WORDS = "alpha beta gamma delta epsilon"


@pytest.fixture
def streaming_model(db):
    return AIModel.objects.create(
        slug="stream-echo",
        display_name="Streaming echo",
        task="chat",
        backend="echo",
        config={"tokens": 150, "tokens_per_second": 300},
        max_output_tokens=1000,
    )


def _submit(owner, model="stream-echo") -> Job:
    return job_submit(user=owner, model=model, input={"messages": [{"role": "user", "content": WORDS}]})


def _stored(job: Job) -> Job:
    job.refresh_from_db()
    return job


def test_a_watcher_gets_every_event_in_order_and_the_text_equals_the_stored_output(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    job = _submit(owner)

    watch = watch_job(daphne_server, job.id, owner_key)

    job = _stored(job)
    assert watch.close_code == 1000
    assert watch.seqs == list(range(1, len(watch.events) + 1))
    assert watch.events[-1]["type"] == "done"
    assert watch.events[-1]["data"]["status"] == JobStatus.SUCCEEDED
    assert watch.text == job.output_text
    assert len([e for e in watch.events if e["type"] == "delta"]) > 1


def test_reconnecting_anywhere_with_after_yields_each_event_exactly_once(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    rng = random.Random(7)
    for _ in range(4):
        job = _submit(owner)
        seen: list[dict] = []
        while not seen or seen[-1]["type"] != "done":
            after = seen[-1]["seq"] if seen else 0
            part = watch_job(daphne_server, job.id, owner_key, after=after, limit=rng.randint(1, 6))
            seen.extend(part.events)

        full = [event.as_dict() for event in streams.read_events(job.id)]
        assert seen == full
        assert "".join(e["data"]["text"] for e in seen if e["type"] == "delta") == _stored(job).output_text


def test_every_reconnect_point_of_a_finished_job_replays_the_rest(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    job = _submit(owner)
    full = watch_job(daphne_server, job.id, owner_key).events

    for after in range(len(full)):
        assert watch_job(daphne_server, job.id, owner_key, after=after).events == full[after:]


def test_a_watcher_that_has_read_done_hears_nothing_more(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    job = _submit(owner)
    full = watch_job(daphne_server, job.id, owner_key).events
    last = full[-1]["seq"]

    for after in (last, last + 5):  # an EventSource reconnects after `done` unless its page closes it
        socket = watch_job(daphne_server, job.id, owner_key, after=after)
        status, sse = watch_sse(daphne_server, job.id, owner_key, last_event_id=after)
        assert (socket.events, socket.close_code) == ([], 1000)
        assert (status, sse.events) == (200, [])


def test_two_watchers_of_one_job_both_receive_everything(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    job = _submit(owner)
    with (
        open_job_socket(daphne_server, job.id, owner_key) as first,
        open_job_socket(daphne_server, job.id, owner_key) as second,
    ):
        one, two = watch_socket(first), watch_socket(second)

    assert one.events == two.events
    assert one.text == _stored(job).output_text


def test_another_users_job_looks_exactly_like_a_missing_one(
    celery_worker, daphne_server, owner, outsider_key, streaming_model
):
    job = _submit(owner)

    theirs = watch_job(daphne_server, job.id, outsider_key)
    missing = watch_job(daphne_server, "00000000-0000-4000-8000-000000000000", outsider_key)

    assert theirs.events == missing.events == []
    assert theirs.close_code == missing.close_code == 4404


def test_a_socket_path_that_names_nothing_is_closed_as_not_found(daphne_server, owner_key):
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {owner_key}"}
    closes = []
    for path in ("/ws/jobs/not-a-job-id/", "/ws/jobs//", "/ws/nothing/"):
        with connect(f"{daphne_server.ws_url}{path}", additional_headers=headers) as ws:
            closes.append(watch_socket(ws, timeout=10).close_code)

    assert closes == [4404, 4404, 4404]


def test_a_socket_without_credentials_is_refused(daphne_server, owner, streaming_model):
    job = _submit(owner)

    anonymous = watch_job(daphne_server, job.id, origin=daphne_server.url)
    forged = watch_job(daphne_server, job.id, "djn_not_a_real_key")

    assert anonymous.close_code == forged.close_code == 4401
    assert anonymous.events == forged.events == []


def test_a_browser_session_must_come_from_our_own_origin(celery_worker, daphne_server, owner, streaming_model, client):
    client.force_login(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    job = _submit(owner)

    with pytest.raises(InvalidStatus) as refused:
        watch_job(daphne_server, job.id, origin="https://evil.example", cookie=cookie)
    same_origin = watch_job(daphne_server, job.id, origin=daphne_server.url, cookie=cookie)

    assert refused.value.response.status_code == 403
    assert same_origin.text == _stored(job).output_text


def test_cancel_from_the_socket_stops_the_job_and_keeps_the_partial_output(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    streaming_model.config = {"tokens": 2000, "tokens_per_second": 200}
    streaming_model.save()
    job = _submit(owner)

    with open_job_socket(daphne_server, job.id, owner_key) as ws:
        head = watch_socket(ws, limit=4)
        ws.send('{"type": "cancel"}')
        rest = watch_socket(ws)

    job = _stored(job)
    events = head.events + rest.events
    assert job.status == JobStatus.CANCELED
    assert events[-1]["data"]["status"] == JobStatus.CANCELED
    assert 0 < job.completion_tokens < 2000
    assert "".join(e["data"]["text"] for e in events if e["type"] == "delta") == job.output_text


def test_cancel_before_start_never_calls_the_backend(start_worker, daphne_server, owner, owner_key):
    queue = f"unstaffed-{uuid.uuid4().hex[:8]}"  # its own queue: the worker below gets this job's message only
    AIModel.objects.create(slug="unstaffed", display_name="Unstaffed", task="chat", backend="echo", queue=queue)
    job = _submit(owner, model="unstaffed")

    with open_job_socket(daphne_server, job.id, owner_key) as ws:
        first = watch_socket(ws, limit=1)
        ws.send('{"type": "cancel"}')
        rest = watch_socket(ws)
    worker = start_worker(queue)  # the message is still in the queue: the worker must skip it

    ran = re.compile(r"Task inference\.tasks\.run_job\[[^\]]+\] succeeded in [\d.]+s: (.*)")
    task = wait_for(lambda: ran.search(worker.log()), what="the worker to receive the job's message and return")
    job = _stored(job)
    assert task.group(1) == "None"  # job_execute skipped it
    statuses = [e["data"]["status"] for e in first.events + rest.events if e["type"] in ("status", "done")]
    assert statuses == ["queued", "canceled"]
    assert (job.status, job.started_at, job.worker, job.output_text) == (JobStatus.CANCELED, None, "", "")
    assert [event.type for event in streams.read_events(job.id)] == ["status", "done"]


def test_a_stalled_watcher_slows_neither_the_worker_nor_other_watchers(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    streaming_model.config = {"tokens": 3000}
    streaming_model.save()
    job = _submit(owner)

    with open_job_socket(daphne_server, job.id, owner_key) as stalled:
        stalled.recv(timeout=10)  # then never reads again
        live = watch_job(daphne_server, job.id, owner_key)
        wait_for(lambda: _stored(job).is_finished, what="the job to finish while a watcher stalls")

    assert live.text == _stored(job).output_text


def test_a_watcher_busy_when_the_stream_ends_still_gets_every_event_and_a_clean_close(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    # Daphne waited for the client's answer to its close frame only until the next whole second of
    # the clock (config/autobahn_close_handshake.py), then reset the connection: a client that was
    # busy then lost the stream's end. This one stops reading for a second and a half after the close.
    job = _submit(owner)

    def busy_until_a_while_after_the_job_ended() -> None:
        try:
            wait_for(lambda: _stored(job).is_finished, what="the job to finish")
            time.sleep(1.5)  # daphne has sent the rest, then its close frame, which waits here unanswered
        finally:
            connections.close_all()

    async def watch_with_a_busy_moment() -> tuple[list[dict], int | None]:
        headers = {"Authorization": f"Bearer {owner_key}"}
        async with async_connect(f"{daphne_server.ws_url}/ws/jobs/{job.id}/", additional_headers=headers) as ws:
            events = [json.loads(await ws.recv())]
            ws.transport.pause_reading()
            await asyncio.to_thread(busy_until_a_while_after_the_job_ended)
            reset = ws.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert reset == 0, f"daphne reset the connection while its client was busy: {os.strerror(reset)}"
            ws.transport.resume_reading()
            events += [json.loads(message) async for message in ws]
            return events, ws.close_code

    events, close_code = asyncio.run(watch_with_a_busy_moment())

    assert close_code == 1000
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "done"
    assert "".join(e["data"]["text"] for e in events if e["type"] == "delta") == _stored(job).output_text


def test_watchers_leaving_mid_stream_are_no_error(celery_worker, daphne_server, owner, owner_key, streaming_model):
    # A socket closed while an event was on its way made daphne refuse the send ("Attempt to send
    # on a closed protocol"), logged as the stream failing: about one close in eight of a lively
    # stream did. 60 closes catch it almost always.
    streaming_model.config = {"tokens": 6000, "tokens_per_second": 1000}  # about 60 deltas a second for 6 s
    streaming_model.max_output_tokens = 6000
    streaming_model.save()
    job = _submit(owner)
    wait_for(lambda: _stored(job).status == JobStatus.RUNNING, what="the job to start streaming")
    log_start = daphne_server.log_path.stat().st_size

    for _ in range(3):
        with contextlib.ExitStack() as sockets:
            # max_queue=None: a client that stops reading would not see the server's close for 10 s.
            open_one = partial(open_job_socket, daphne_server, job.id, owner_key, max_queue=None)
            watchers = [sockets.enter_context(open_one()) for _ in range(20)]
            for watcher in watchers:
                watcher.recv(timeout=10)
            with ThreadPoolExecutor(len(watchers)) as closing:  # all at once, as a busy page's tabs might
                list(closing.map(lambda watcher: watcher.close(), watchers))
    assert not _stored(job).is_finished, "the job finished before its watchers left it mid-stream"
    watch_job(daphne_server, job.id, owner_key)  # daphne has handled every socket before this one

    with daphne_server.log_path.open(errors="replace") as log:
        log.seek(log_start)
        assert "ERROR" not in log.read()


def test_sse_sends_the_same_events_and_resumes_from_last_event_id(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    job = _submit(owner)
    websocket = watch_job(daphne_server, job.id, owner_key).events

    status, sse = watch_sse(daphne_server, job.id, owner_key)
    _, resumed = watch_sse(daphne_server, job.id, owner_key, after=0, last_event_id=3)
    _, from_query = watch_sse(daphne_server, job.id, owner_key, after=5)

    assert status == 200
    assert sse.events == websocket
    assert resumed.events == websocket[3:]
    assert from_query.events == websocket[5:]


CHAT_BODY = {"model": "stream-echo", "input": {"messages": [{"role": "user", "content": WORDS}]}}


def test_a_streamed_submit_answers_with_every_event_of_the_job_it_created(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    response, streamed = submit_streamed(daphne_server, owner_key, CHAT_BODY)

    job = Job.objects.get(owner=owner)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-djinn-job-id"] == str(job.id)
    assert response.headers["location"] == f"{daphne_server.url}/api/v1/jobs/{job.id}"
    assert streamed.seqs == list(range(1, len(streamed.events) + 1))
    assert streamed.events[-1]["data"]["status"] == JobStatus.SUCCEEDED
    assert streamed.text == job.output_text != ""
    assert streamed.events == watch_job(daphne_server, job.id, owner_key).events  # what any watcher gets


def test_a_streamed_submit_retried_with_its_idempotency_key_streams_the_same_job(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    key = {"Idempotency-Key": "retry-after-a-dropped-connection"}
    first, first_events = submit_streamed(daphne_server, owner_key, CHAT_BODY, headers=key)
    again, again_events = submit_streamed(daphne_server, owner_key, CHAT_BODY, headers=key)

    assert Job.objects.filter(owner=owner).count() == 1
    assert again.headers["x-djinn-job-id"] == first.headers["x-djinn-job-id"]
    assert again_events.events == first_events.events


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({**CHAT_BODY, "stream": "true"}, 400, "invalid", "stream"),
        ({**CHAT_BODY, "stream": 1}, 400, "invalid", "stream"),
        ({**CHAT_BODY, "model": "no-such-model"}, 404, "model_not_found", "model"),
        ({**CHAT_BODY, "input": {"messages": []}}, 422, "too_short", "input.messages"),
    ],
)
def test_a_streamed_submit_of_bad_input_is_refused_in_json_and_creates_nothing(
    daphne_server, owner, owner_key, streaming_model, body, status, code, param
):
    response = httpx.post(
        f"{daphne_server.url}/api/v1/jobs",
        json={"stream": True, **body},
        headers={"Authorization": f"Bearer {owner_key}"},
    )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
    assert not Job.objects.exists()


def test_a_streamed_submit_with_a_bad_key_is_refused_in_json(daphne_server, streaming_model):
    response, answer = submit_streamed(daphne_server, "djn_nope_nope", CHAT_BODY)

    assert (response.status_code, answer.events[0]["error"]["code"]) == (401, "invalid_api_key")
    assert not Job.objects.exists()


def test_sse_refuses_strangers_and_bad_positions(daphne_server, owner, owner_key, outsider_key, streaming_model):
    job = _submit(owner)

    stranger_status, stranger = watch_sse(daphne_server, job.id, outsider_key)
    bad_status, bad = watch_sse(daphne_server, job.id, owner_key, after="x")
    anonymous_status, anonymous = watch_sse(daphne_server, job.id, "djn_nope_nope")

    assert (stranger_status, stranger.events[0]["error"]["code"]) == (404, "job_not_found")
    assert (bad_status, bad.events[0]["error"]["code"]) == (400, "invalid_after")
    assert (anonymous_status, anonymous.events[0]["error"]["code"]) == (401, "invalid_api_key")


def test_the_user_feed_tells_open_tabs_about_every_status_change(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    from websockets.sync.client import connect

    with connect(f"{daphne_server.ws_url}/ws/jobs/", additional_headers={"Authorization": f"Bearer {owner_key}"}) as ws:
        job = _submit(owner)
        changes = []
        while not changes or changes[-1]["status"] not in ("succeeded", "failed"):
            message = json.loads(ws.recv(timeout=20))
            if message["job"] == str(job.id):
                changes.append(message)

    assert [change["status"] for change in changes] == ["queued", "running", "succeeded"]


def test_tabs_closing_while_their_feed_speaks_are_no_error(celery_worker, daphne_server, owner, owner_key, echo_model):
    # As with a job's socket: a tab closed while a change went out was logged as the feed failing.
    log_start = daphne_server.log_path.stat().st_size
    headers = {"Authorization": f"Bearer {owner_key}"}
    stop_submitting = threading.Event()

    def submit_steadily():  # each job tells the feed it is queued, running, then succeeded
        while not stop_submitting.is_set():
            job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})
        connections.close_all()

    with ThreadPoolExecutor(1) as submitting:
        submitted = submitting.submit(submit_steadily)
        try:
            for _ in range(3):
                with contextlib.ExitStack() as sockets:
                    open_one = partial(connect, f"{daphne_server.ws_url}/ws/jobs/", additional_headers=headers)
                    tabs = [sockets.enter_context(open_one(max_queue=None)) for _ in range(20)]
                    for tab in tabs:
                        tab.recv(timeout=10)
                    with ThreadPoolExecutor(len(tabs)) as closing:
                        list(closing.map(lambda tab: tab.close(), tabs))
        finally:
            stop_submitting.set()
            submitted.result()
    watch_job(daphne_server, uuid.uuid4(), owner_key)  # daphne has handled every socket before this one

    with daphne_server.log_path.open(errors="replace") as log:
        log.seek(log_start)
        assert "ERROR" not in log.read()


def test_open_tabs_share_one_redis_connection_for_their_feeds(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    # Each tab's feed blocked on an XREAD of its own: a Redis connection per open tab, until tabs
    # enough took every connection Redis allows, the workers' and the broker's with them.
    headers = {"Authorization": f"Bearer {owner_key}"}
    connected_before = len(streams.redis_client().client_list())
    with contextlib.ExitStack() as sockets:
        tabs = [
            sockets.enter_context(connect(f"{daphne_server.ws_url}/ws/jobs/", additional_headers=headers))
            for _ in range(60)
        ]
        job = _submit(owner)
        heard = [json.loads(tab.recv(timeout=20)) for tab in tabs]  # every tab is following its feed
        connected_during = len(streams.redis_client().client_list())

    assert {(change["job"], change["status"]) for change in heard} == {(str(job.id), "queued")}
    # daphne's few pooled connections and its subscription, with room for the test's own.
    added = connected_during - connected_before
    assert added <= streams.ASYNC_MAX_CONNECTIONS + 4, (connected_before, connected_during)


def test_the_user_feed_resumes_from_a_position_with_the_changes_made_before_the_socket(
    celery_worker, daphne_server, owner, owner_key, streaming_model
):
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {owner_key}"}
    rendered_at = streams.user_feed_position(owner.pk)  # as a page does when it is rendered
    job = _submit(owner)
    wait_for(lambda: _stored(job).is_finished, timeout=30, what="the job to end before any socket is up")

    with connect(f"{daphne_server.ws_url}/ws/jobs/?after={rendered_at}", additional_headers=headers) as ws:
        changes = [json.loads(ws.recv(timeout=20)) for _ in range(3)]
    with connect(f"{daphne_server.ws_url}/ws/jobs/?after={changes[0]['position']}", additional_headers=headers) as ws:
        resumed = [json.loads(ws.recv(timeout=20)) for _ in range(2)]
    refusals = []
    for position in ("yesterday", f"{2**64}-0"):  # not a stream id; past the largest Redis takes
        with connect(f"{daphne_server.ws_url}/ws/jobs/?after={position}", additional_headers=headers) as ws:
            refusals.append(watch_socket(ws, timeout=10))

    assert [(change["job"], change["status"]) for change in changes] == [
        (str(job.id), "queued"),
        (str(job.id), "running"),
        (str(job.id), "succeeded"),
    ]
    assert resumed == changes[1:]
    assert [(refused.events, refused.close_code) for refused in refusals] == [([], 4400), ([], 4400)]


def test_the_user_feed_refuses_a_socket_without_a_valid_key(daphne_server, owner_key):
    from websockets.sync.client import connect

    closes = []
    for headers in ({"Authorization": "Bearer djn_not_a_real_key"}, {"Authorization": "Basic b3duZXI6cHc="}):
        with connect(f"{daphne_server.ws_url}/ws/jobs/", additional_headers=headers) as ws:
            closes.append(watch_socket(ws, timeout=10).close_code)

    assert closes == [4401, 4401]


def _feed(server, key: str):
    return connect(f"{server.ws_url}/ws/jobs/", additional_headers={"Authorization": f"Bearer {key}"})


def _quiet(ws) -> bool:
    """Open and saying nothing for a second."""
    try:
        ws.recv(timeout=1)
    except TimeoutError:
        return True
    return False


def test_revoking_a_key_closes_the_feeds_it_opened_and_only_those(daphne_server, owner):
    from accounts.services import api_key_create, api_key_revoke

    leaked, kept = api_key_create(user=owner, name="leaked"), api_key_create(user=owner, name="laptop")
    with _feed(daphne_server, leaked.plaintext) as leaked_feed, _feed(daphne_server, kept.plaintext) as kept_feed:
        assert _quiet(leaked_feed)
        assert _quiet(kept_feed)

        api_key_revoke(api_key=leaked.api_key)

        closed = watch_socket(leaked_feed, timeout=10)
        assert _quiet(kept_feed), "another key's feed stays open, and is not told of the revocation"

    assert (closed.events, closed.close_code) == ([], 4401)


def test_disabling_a_user_closes_every_feed_they_hold(daphne_server, owner, client):
    from accounts.deactivation import user_disable
    from accounts.services import api_key_create

    key = api_key_create(user=owner, name="laptop").plaintext
    client.force_login(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    origin = {"Origin": f"http://127.0.0.1:{daphne_server.port}"}
    with (
        _feed(daphne_server, key) as by_key,
        connect(f"{daphne_server.ws_url}/ws/jobs/", additional_headers={"Cookie": cookie, **origin}) as by_session,
    ):
        assert _quiet(by_key)
        assert _quiet(by_session)

        user_disable(user=owner)

        closes = [watch_socket(ws, timeout=10).close_code for ws in (by_key, by_session)]

    assert closes == [4401, 4401]
