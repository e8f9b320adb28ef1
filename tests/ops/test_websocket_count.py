"""Open websockets are counted per daphne process in Redis, and /metrics reports their sum."""

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.websocket_auth import ApiKeyOrSessionAuthMiddleware
from inference.routing import websocket_urlpatterns
from ops.websockets import WebsocketCounter, websockets_open

pytestmark = pytest.mark.django_db(transaction=True)


async def _count_becomes(expected: int) -> int:
    """The published count once it reaches `expected` (it is written beside the handshake, not before)."""
    for _ in range(100):
        count = websockets_open()
        if count == expected:
            return count
        await asyncio.sleep(0.02)
    return count


def test_a_connection_counts_from_accept_until_it_closes(owner_key):
    counter = WebsocketCounter(ApiKeyOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns)))
    before = websockets_open()

    async def scenario():
        headers = [(b"authorization", f"Bearer {owner_key}".encode())]
        first = WebsocketCommunicator(counter, "/ws/jobs/", headers=headers)
        second = WebsocketCommunicator(counter, "/ws/jobs/", headers=headers)
        assert (await first.connect())[0]
        assert (await second.connect())[0]
        during = await _count_becomes(before + 2)
        await first.disconnect()
        after_one = await _count_becomes(before + 1)
        await second.disconnect()
        return during, after_one, await _count_becomes(before)

    during, after_one, after_both = asyncio.run(scenario())

    assert (during - before, after_one - before, after_both - before) == (2, 1, 0)


def test_a_refused_handshake_is_not_counted():
    counter = WebsocketCounter(ApiKeyOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns)))
    before = websockets_open()

    async def scenario():
        anonymous = WebsocketCommunicator(counter, "/ws/jobs/")
        connected, _ = await anonymous.connect()
        if connected:  # accepted then closed with 4401: counted only while open
            await anonymous.receive_output()
        await anonymous.wait()
        return await _count_becomes(before)

    assert asyncio.run(scenario()) == before
