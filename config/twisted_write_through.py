"""Daphne's sockets send what is written at once, as asyncio's transports do, not at the loop's next turn.

Twisted's `FileDescriptor.write` only buffers: it registers the socket for writability
(`startWriting`, an epoll_ctl), the loop's next turn finds it writable and sends, and the
socket is unregistered (`stopWriting`, another epoll_ctl). Daphne pays that for every
websocket frame and every HTTP response it sends: at 200 paced streams, 6,000 frames a
second, each waiting for a turn of the loop that every other socket's work shares.

`install()` makes a TCP connection whose buffer is empty try `send()` right away, as
asyncio's selector transport does. Whatever the kernel does not take (a client reading
slower than it is sent to) goes to Twisted's buffer as before, and from there on Twisted's
own path sends it, in order, pausing a streaming producer when the buffer fills; a
connection closing, or already broken, or fed by a pull producer (which writes again only
when Twisted's path has drained the buffer and asks it to), is left to Twisted entirely.
"""

from __future__ import annotations

from twisted.internet import tcp


def install() -> None:
    if getattr(tcp.Connection.write, "djinn_write_through", False):
        return
    buffered_write = tcp.Connection.write
    buffered_write_sequence = tcp.Connection.writeSequence

    def write(self, data: bytes) -> None:
        if (
            not data
            or self.TLS  # started on the connection (startTLS): the TLS layer writes through Twisted's path
            or not self.connected
            or self.disconnecting
            or self._writeDisconnecting
            or self._writeDisconnected
            or self._tempDataLen
            or self.offset < len(self.dataBuffer)
            # A pull producer writes again only when Twisted's path drains the buffer and asks it to.
            or (self.producer is not None and not self.streamingProducer)
            or not isinstance(data, bytes)  # Twisted's own write refuses it with its error
        ):
            buffered_write(self, data)
            return
        sent = self.writeSomeData(data)
        if isinstance(sent, Exception):
            # Broken: Twisted's write path finds it again and ends the connection as it always does.
            buffered_write(self, data)
        elif sent < len(data):
            buffered_write(self, data[sent:])

    def write_sequence(self, iovec) -> None:
        if self.TLS or not all(isinstance(data, bytes) for data in iovec):
            buffered_write_sequence(self, iovec)
        else:
            write(self, b"".join(iovec))

    write.djinn_write_through = True
    tcp.Connection.write = write
    tcp.Connection.writeSequence = write_sequence
