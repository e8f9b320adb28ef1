"""Following a job's events before the caller is known to be allowed to see them (EventsReadAhead), on real Redis."""

import asyncio
import contextlib
import gc
import uuid

from inference import streams
from inference.log_tail import log_tail
from inference.services.events import EventsReadAhead


def _subscribers(job_id) -> int:
    ((_, count),) = streams.redis_client().pubsub_numsub(streams.log_key(job_id))
    return count


async def _until(predicate, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def _unsubscribed(*job_ids) -> tuple[int, ...]:
    """Each log's subscribers once the unsubscribes have landed, or after 5 s: a follower sends
    UNSUBSCRIBE without waiting for Redis to confirm it, and a count read at once may precede it."""
    with contextlib.suppress(TimeoutError):
        await _until(lambda: not any(_subscribers(job_id) for job_id in job_ids))
    return tuple(_subscribers(job_id) for job_id in job_ids)


def test_it_reads_ahead_and_then_gives_every_event_once_in_order():
    job_id = uuid.uuid4()
    streams.append_event(job_id, 1, "status", {"status": "running"})
    streams.append_event(job_id, 1, "delta", {"text": "read ahead "})

    async def scenario():
        events = EventsReadAhead(job_id=job_id, after=0, poll_ms=60_000)
        await _until(lambda: _subscribers(job_id) == 1)  # subscribed before anyone iterates
        streams.append_event(job_id, 1, "delta", {"text": "then live"})
        streams.append_event(job_id, 1, "done", {"status": "succeeded"})
        async with asyncio.timeout(10):
            received = [event async for event in events]
        return received, await _unsubscribed(job_id)

    received, subscribers_after = asyncio.run(scenario())
    assert [event.seq for event in received] == [1, 2, 3, 4]
    assert [event.data.get("text") for event in received if event.type == "delta"] == ["read ahead ", "then live"]
    assert subscribers_after == (0,)


def test_an_abandoned_read_ahead_unsubscribes_whether_its_first_event_came_or_not():
    waiting, answered = uuid.uuid4(), uuid.uuid4()  # a silent log, and one with an event
    streams.append_event(answered, 1, "status", {"status": "running"})

    async def scenario():
        reads = [EventsReadAhead(job_id=job_id, after=0, poll_ms=60_000) for job_id in (waiting, answered)]
        await _until(lambda: _subscribers(waiting) == _subscribers(answered) == 1)
        for read in reads:
            await read.abandon()
            await read.abandon()  # again is harmless
        return await _unsubscribed(waiting, answered)

    assert asyncio.run(scenario()) == (0, 0)


def test_a_read_ahead_abandoned_as_its_subscription_is_confirmed_stops():
    # A refused watcher of a missing job: its log never speaks. Python 3.11's asyncio.wait_for
    # swallowed the cancel that came with the confirmation, and the abandon waited for ever.
    job_id = uuid.uuid4()

    async def scenario():
        events = EventsReadAhead(job_id=job_id, after=0, poll_ms=60_000)
        await asyncio.sleep(0)  # it has sent its SUBSCRIBE; Redis has not answered yet
        confirmed = log_tail()._confirmations[streams.log_key(job_id)]  # the moment this test needs
        assert not confirmed.done()
        abandoning = []
        confirmed.add_done_callback(lambda _: abandoning.append(asyncio.ensure_future(events.abandon())))
        await _until(lambda: abandoning)
        async with asyncio.timeout(5):
            await abandoning[0]
        await _until(lambda: _subscribers(job_id) == 0)
        return _subscribers(job_id)

    assert asyncio.run(scenario()) == 0


def test_a_read_ahead_dropped_unused_stops_following():
    job_id = uuid.uuid4()

    async def scenario():
        unused = EventsReadAhead(job_id=job_id, after=0, poll_ms=60_000)  # e.g. a streamed response never sent
        await _until(lambda: _subscribers(job_id) == 1)
        del unused
        gc.collect()
        await _until(lambda: _subscribers(job_id) == 0)
        return _subscribers(job_id)

    assert asyncio.run(scenario()) == 0
