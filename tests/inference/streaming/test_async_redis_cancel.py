"""Redis reads on daphne's event loop: canceled wherever the cancel lands, and timed out when Redis is silent.

A websocket's follower is canceled when its client leaves; a cancel it never saw kept it
following, and kept the socket's disconnect waiting, until the job ended.
"""

import asyncio
import socket
import uuid

import pytest
import redis.exceptions

from inference import streams

# More loop steps than one command takes from its start to its reply, so every point is tried.
LOOP_STEPS = 40


def test_a_read_canceled_at_any_step_ends_canceled():
    job_id = uuid.uuid4()
    streams.append_event(job_id, 1, "status", {"status": "running"})

    async def scenario():
        await streams.aread_events(job_id)  # the pool's connection is open: no connect below
        outcomes = []
        for steps in range(LOOP_STEPS):
            read = asyncio.ensure_future(streams.aread_events(job_id))
            for _ in range(steps):
                await asyncio.sleep(0)
            if read.done():
                break  # the reply came before this many steps: every earlier point was tried
            read.cancel()
            await asyncio.wait([read])
            outcomes.append("canceled" if read.cancelled() else f"ran on at step {steps}")
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes, "the read finished before it could be canceled"
    assert set(outcomes) == {"canceled"}, outcomes


def test_a_read_from_a_redis_that_never_answers_times_out(settings, monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        monkeypatch.setattr(streams, "SOCKET_TIMEOUT_SECONDS", 0.2)
        with pytest.raises(redis.exceptions.TimeoutError, match="Redis did not answer"):
            asyncio.run(streams.aread_events(uuid.uuid4()))
