"""Live tails on real Redis: what watchers take from the shared subscription, and how they recover.

A watcher takes pushed events only in sequence; whatever it misses (an inbox that overflowed,
a subscription that dropped) it must be told to read from the log.
"""

import asyncio
import contextlib
import time
import uuid

import pytest

from inference import log_tail, streams
from inference.services.events import READ_BATCH, job_events_follow_async


def _append(job_id, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        streams.append_event(job_id, 1, "delta", {"text": f"t{index} "})


def _kill_subscription() -> None:
    client = streams.redis_client()
    killed = [
        client.client_kill_filter(_id=entry["id"])
        for entry in client.client_list()
        if entry["name"] == log_tail.connection_name()
    ]
    assert killed, "the log tail's connection was not found"


def test_every_watcher_of_a_job_takes_its_new_events_in_order():
    job_id = uuid.uuid4()

    async def scenario():
        tail = log_tail.log_tail()
        async with tail.follow(job_id) as first, tail.follow(job_id) as second:
            _append(job_id, 3)
            taken = [[], []]
            for inbox, events in zip((first, second), taken, strict=True):
                while len(events) < 3:
                    batch, stale = await inbox.take(events[-1].seq if events else 0, timeout=5)
                    assert not stale
                    events.extend(batch)
            return taken

    first, second = asyncio.run(scenario())
    assert [event.seq for event in first] == [1, 2, 3] == [event.seq for event in second]
    assert [event.data["text"] for event in first] == ["t0 ", "t1 ", "t2 "]


def test_an_inbox_holding_only_events_already_read_from_the_log_waits_for_the_next_one():
    # A watcher reads the log while the same events are pushed to its inbox: those are not
    # silence (silence sends it to ask the database whether the job ended, 50 ms and a query).
    pushed = [streams.Event(seq, "delta", 1, {"text": f"t{seq} "}) for seq in (1, 2, 3)]

    async def scenario():
        inbox = log_tail.Inbox()
        inbox.push(pushed[0])
        inbox.push(pushed[1])
        asyncio.get_running_loop().call_later(0.05, inbox.push, pushed[2])
        return await inbox.take(2, timeout=5)

    taken, stale = asyncio.run(scenario())
    assert (taken, stale) == ([pushed[2]], False)


def test_an_inbox_given_nothing_answers_silence_once_its_timeout_passes_then_wakes_for_the_next_push():
    async def scenario():
        loop = asyncio.get_running_loop()
        inbox = log_tail.Inbox()
        started = loop.time()
        silence = await inbox.take(0, timeout=0.05)
        waited = loop.time() - started
        loop.call_later(0.01, inbox.push, streams.Event(1, "delta", 1, {"text": "t1 "}))
        woken = await inbox.take(0, timeout=5)
        return silence, waited, woken

    silence, waited, (taken, stale) = asyncio.run(scenario())
    assert silence == ([], False)  # nothing new, and nothing to read from the log
    assert waited >= 0.05
    assert ([event.seq for event in taken], stale) == ([1], False)


def test_a_watcher_canceled_as_an_event_reaches_its_inbox_stops():
    # Python 3.11's asyncio.wait_for returned the event and swallowed the cancel: the watcher went on.
    async def scenario():
        inbox = log_tail.Inbox()
        taking = asyncio.create_task(inbox.take(0, timeout=5))
        await asyncio.sleep(0)  # waiting for a push
        inbox.push(streams.Event(1, "delta", 1, {"text": "t1 "}))
        taking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await taking
        return taking.cancelled()

    assert asyncio.run(scenario())


def test_an_inbox_left_unread_holds_a_bounded_number_of_events_and_sends_its_watcher_to_the_log():
    job_id = uuid.uuid4()
    appended = log_tail.INBOX_MAX + 50

    async def scenario():
        async with log_tail.log_tail().follow(job_id) as inbox:
            _append(job_id, appended)
            await asyncio.sleep(0.5)  # every event has reached the inbox by now
            return await inbox.take(0, timeout=5)

    taken, stale = asyncio.run(scenario())
    assert stale, "a watcher whose inbox overflowed must read the log"
    assert len(taken) <= log_tail.INBOX_MAX
    assert [event.seq for event in taken] == list(range(1, len(taken) + 1))


def test_a_watcher_gets_every_event_once_across_a_dropped_subscription():
    job_id = uuid.uuid4()

    async def scenario():
        received = []
        follower = job_events_follow_async(job_id=job_id, after=0, poll_ms=60_000)
        streams.append_event(job_id, 1, "status", {"status": "running"})
        received.append(await anext(follower))
        _append(job_id, 5)
        received.extend([await anext(follower) for _ in range(5)])
        _kill_subscription()
        _append(job_id, 5, start=5)  # published while the subscription is down: lost to it
        await asyncio.sleep(0.2)
        _append(job_id, 5, start=10)
        streams.append_event(job_id, 1, "done", {"status": "succeeded"})
        async with asyncio.timeout(10):
            async for event in follower:
                received.append(event)
        return received

    received = asyncio.run(scenario())
    assert [event.seq for event in received] == list(range(1, 18))
    assert "".join(event.data["text"] for event in received if event.type == "delta") == "".join(
        f"t{index} " for index in range(15)
    )


def test_a_users_tabs_are_woken_when_their_feed_grows_and_after_a_dropped_subscription():
    user_id = f"tail-test-{uuid.uuid4()}"
    other_user_id = f"tail-test-{uuid.uuid4()}"

    async def woken(inbox: log_tail.Inbox) -> bool:
        _, stale = await inbox.take(after=0, timeout=2)
        return stale

    async def scenario():
        tail = log_tail.log_tail()
        async with tail.follow_user_feed(user_id) as first, tail.follow_user_feed(user_id) as second:
            quiet = await woken(first)
            streams.notify_user(other_user_id, {"job": "elsewhere", "status": "queued"})
            not_theirs = await woken(first)
            streams.notify_user(user_id, {"job": "j1", "status": "queued"})
            grown = (await woken(first), await woken(second))
            _kill_subscription()  # what is published until it is back is lost: every tab reads its feed
            dropped = (await woken(first), await woken(second))
        return quiet, not_theirs, grown, dropped

    quiet, not_theirs, grown, dropped = asyncio.run(scenario())
    assert (quiet, not_theirs) == (False, False)
    assert grown == (True, True)
    assert dropped == (True, True)
    changes = asyncio.run(streams.aread_user_changes(user_id, "0-0"))
    assert [change for _, change in changes] == [{"job": "j1", "status": "queued"}]


def test_a_watcher_that_fell_behind_by_more_than_its_inbox_still_gets_every_event_once():
    job_id = uuid.uuid4()
    appended = log_tail.INBOX_MAX + READ_BATCH + 40

    async def scenario():
        follower = job_events_follow_async(job_id=job_id, after=0, poll_ms=60_000)
        streams.append_event(job_id, 1, "status", {"status": "running"})
        received = [await anext(follower)]
        _append(job_id, appended)  # pushed while this watcher is not taking: its inbox overflows
        streams.append_event(job_id, 1, "done", {"status": "succeeded"})
        await asyncio.sleep(0.5)
        async with asyncio.timeout(10):
            received.extend([event async for event in follower])
        return received

    received = asyncio.run(scenario())
    assert [event.seq for event in received] == list(range(1, appended + 3))


def test_following_while_redis_is_unreachable_fails_at_once_after_the_first_try(settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(log_tail, "SUBSCRIBE_TIMEOUT_SECONDS", 1)

    async def follow_once() -> tuple[str, float]:
        started = time.monotonic()
        try:
            async with log_tail.log_tail().follow(uuid.uuid4()):
                return "followed", time.monotonic() - started
        except (TimeoutError, ConnectionError) as exc:
            return type(exc).__name__, time.monotonic() - started

    async def scenario():
        first = await follow_once()  # waits for a subscription that cannot come
        await asyncio.sleep(0.2)  # the connection has been refused by now
        return first, await follow_once()

    (first, _), (second, second_took) = asyncio.run(scenario())
    assert (first, second) == ("TimeoutError", "ConnectionError")
    assert second_took < 0.5


@pytest.mark.django_db(transaction=True)  # the watchers ask on database threads of their own
def test_silent_watchers_of_jobs_that_ended_without_a_done_in_their_log_end_with_the_stored_ones(owner, echo_model):
    from inference.models import JobStatus
    from inference.services.jobs import Usage, job_finish, job_start, job_submit

    def finished_without_done(text: str):
        job = job_submit(user=owner, model="echo", input={"messages": [{"role": "user", "content": text}]})
        job_start(job_id=job.id, attempt=1, worker="w1")
        job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(1, 2), output_text=text)
        streams.redis_client().delete(streams.log_key(job.id))  # as when the log expired
        return job

    jobs = [finished_without_done("first answer"), finished_without_done("second answer")]

    async def follow(job) -> list:
        return [event async for event in job_events_follow_async(job_id=job.id, poll_ms=50)]

    async def scenario():
        async with asyncio.timeout(10):  # both fall silent together: one query answers both
            return await asyncio.gather(*(follow(job) for job in jobs))

    first, second = asyncio.run(scenario())
    assert [event.type for event in first] == [event.type for event in second] == ["status", "delta", "done"]
    assert (first[1].data["text"], second[1].data["text"]) == ("first answer", "second answer")
    assert first[-1].data["status"] == second[-1].data["status"] == "succeeded"
