"""Daphne's TCP connections send a write at once, and buffer only what the kernel does not take (config/asgi.py).

Real sockets on loopback and a real Twisted reactor (not installed: only these connections use it).
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from twisted.internet import interfaces, protocol, tcp
from twisted.internet.selectreactor import SelectReactor
from zope.interface import implementer

from config import twisted_write_through

twisted_write_through.install()


class Recorder(protocol.Protocol):
    transport = None
    lost = None

    def connectionLost(self, reason):
        self.lost = reason


@pytest.fixture
def connection():
    """A server-side Twisted connection (accepted by a real port) and its client's socket."""
    reactor = SelectReactor()
    recorder = Recorder()
    port = reactor.listenTCP(0, protocol.Factory.forProtocol(lambda: recorder), interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    deadline = time.monotonic() + 10
    while recorder.transport is None and time.monotonic() < deadline:
        reactor.iterate(0.01)
    port.stopListening()
    transport = recorder.transport
    assert isinstance(transport, tcp.Server)
    yield reactor, transport, recorder, client
    client.close()
    if transport.connected:
        transport.abortConnection()
        reactor.iterate(0)


def receive(client: socket.socket, size: int, reactor: SelectReactor | None = None) -> bytes:
    """`size` bytes from the client socket, turning the reactor meanwhile when one is given."""
    client.settimeout(0.005)
    received = bytearray()
    deadline = time.monotonic() + 10
    while len(received) < size and time.monotonic() < deadline:
        if reactor is not None:
            reactor.iterate(0)
        try:
            chunk = client.recv(size - len(received))
        except TimeoutError:
            continue
        if not chunk:  # the connection closed
            break
        received += chunk
    return bytes(received)


def test_a_write_goes_out_at_once_without_waiting_for_the_reactor(connection):
    reactor, transport, _, client = connection

    transport.write(b"a websocket frame")
    transport.writeSequence([b"an http ", b"response"])

    assert transport not in reactor.getWriters()  # nothing left for a turn of the loop to send
    expected = b"a websocket framean http response"
    assert receive(client, len(expected)) == expected  # and the reactor never turned


def test_what_the_kernel_does_not_take_is_buffered_and_sent_in_order(connection):
    reactor, transport, _, client = connection
    big = bytes(range(256)) * 40_000  # 10 MB: Twisted sends 128 KiB a call, and the socket takes less

    transport.write(big)
    assert transport in reactor.getWriters()  # the rest waits for the socket to be writable
    transport.write(b"after")  # must not overtake the buffered rest
    transport.writeSequence([b" and ", b"last"])

    assert receive(client, len(big) + 14, reactor) == big + b"after and last"
    reactor.iterate(0)
    assert transport not in reactor.getWriters()
    transport.write(b"direct again")  # the buffer drained: writes go out at once again
    assert transport not in reactor.getWriters()
    assert receive(client, 12) == b"direct again"


def test_a_write_to_a_connection_the_peer_reset_ends_it_the_way_twisted_does(connection):
    reactor, transport, recorder, client = connection
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # with linger 0: a reset, not a FIN
    time.sleep(0.05)

    transport.write(b"to nobody")  # raises nothing here
    transport.write(b"again")
    for _ in range(10):
        reactor.iterate(0.01)

    assert not transport.connected
    assert recorder.lost is not None


def test_a_closing_connection_sends_what_was_written_before_it_closes(connection):
    reactor, transport, recorder, client = connection

    transport.write(b"last words")
    transport.loseConnection()
    transport.write(b", then these")  # before the close takes effect: buffered and sent first, as Twisted does

    assert receive(client, 100, reactor) == b"last words, then these"
    for _ in range(10):
        reactor.iterate(0.01)
    assert recorder.lost is not None


@implementer(interfaces.IPullProducer)
class Chunks:
    """A pull producer (as Twisted's FileSender): one chunk each time the connection asks for more."""

    def __init__(self, transport, chunks: list[bytes]):
        self.transport = transport
        self.chunks = list(chunks)

    def resumeProducing(self):
        if self.chunks:
            self.transport.write(self.chunks.pop(0))
        else:
            self.transport.unregisterProducer()

    def stopProducing(self):
        self.chunks = []


def test_a_pull_producer_is_asked_for_each_chunk_as_twisted_asks_it(connection):
    reactor, transport, _, client = connection
    chunks = [b"one,", b"two,", b"three"]

    transport.registerProducer(Chunks(transport, chunks), streaming=False)

    assert receive(client, 13, reactor) == b"one,two,three"  # sent at once, it was never asked again
    assert transport.producer is None
