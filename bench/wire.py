"""A lean HTTP/1.1 and websocket client for the benchmarks: the measuring instrument, not the thing measured.

The client runs on the same cores as daphne, the workers and PostgreSQL. With
httpx and the `websockets` library it spent 3.5 ms of CPU on each time-to-first-
token sample, and ~50 µs on each of the 6,000 frames a second of the paced
streams: time that the platform's processes waited for a core, or the
client's own loop sat late, and that the benchmark then counted as the
platform's. This client does what a benchmark needs and nothing else: one
keep-alive connection per `HttpConnection`, JSON in and out, `Content-Length`
or chunked bodies; websockets (RFC 6455) with text, close and ping frames.
It is not a general client: no TLS, no redirects, no compression, no
fragmented messages (daphne sends none).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
from collections.abc import AsyncIterator

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ProtocolError(Exception):
    """The server answered something this client does not expect."""


class WebSocketClosed(Exception):
    """The connection ended other than normally: a real client reconnects."""


class HttpError(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


def _request_head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), headers


async def _read_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        chunk = await reader.readexactly(size + 2)
        yield chunk[:-2]


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; requests on it run one after another."""

    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port, self.headers = host, port, headers
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._mid_response = False  # an answer was left half read: the connection cannot carry another

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._mid_response:
            await self.close()
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    async def _send(self, method: str, path: str, body: object | None) -> tuple[asyncio.StreamReader, int, dict]:
        reader, writer = await self._open()
        headers = dict(self.headers)
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            headers.update({"Content-Type": "application/json", "Content-Length": str(len(payload))})
        writer.write(_request_head(method, path, f"{self.host}:{self.port}", headers) + payload)
        self._mid_response = True
        status, response_headers = await _read_head(reader)
        return reader, status, response_headers

    async def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        reader, status, headers = await self._send(method, path, body)
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            content = b"".join([chunk async for chunk in _read_chunks(reader)])
        else:
            raise ProtocolError(f"a response without a length: {headers}")
        self._mid_response = False
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, content

    async def json(self, method: str, path: str, body: object | None = None) -> dict:
        status, content = await self.request(method, path, body)
        if status >= 400:
            raise HttpError(status, content)
        return json.loads(content)

    async def event_stream(self, method: str, path: str, body: object | None = None) -> AsyncIterator[dict]:
        """The `data:` payloads of a text/event-stream answer, decoded, as they arrive."""
        reader, status, headers = await self._send(method, path, body)
        if status >= 400 or headers.get("transfer-encoding") != "chunked":
            raise ProtocolError(f"not an event stream: {status} {headers}")
        pending = b""
        async for chunk in _read_chunks(reader):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    yield json.loads(line[6:])
        self._mid_response = False

    async def close(self) -> None:
        self._mid_response = False
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            await writer.wait_closed()


class WebSocket:
    """A client websocket: `async for message in ws` yields text messages until the server closes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, host: str, port: int, path: str, headers: dict[str, str]) -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16))
        upgrade = {
            **headers,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key.decode(),
            "Sec-WebSocket-Version": "13",
        }
        writer.write(_request_head("GET", path, f"{host}:{port}", upgrade))
        status, response_headers = await _read_head(reader)
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest()).decode()
        if status != 101 or response_headers.get("sec-websocket-accept") != accept:
            writer.close()
            raise ProtocolError(f"websocket handshake refused: {status} {response_headers}")
        return cls(reader, writer)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # A client masks every frame it sends (RFC 6455 5.3); payloads here are short control frames.
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.writer.write(struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked)

    async def _frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        if not first & 0x80:
            raise ProtocolError("a fragmented message")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def recv(self) -> str | None:
        """The next text message, or None once the server has closed the connection normally (1000).

        Any other ending (a close with another code, a dropped connection) raises WebSocketClosed.
        """
        while True:
            try:
                opcode, payload = await self._frame()
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self.writer.close()
                raise WebSocketClosed("the connection ended without a close frame") from error
            if opcode == 0x1:
                return payload.decode()
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send_frame(0x8, payload[:2])
                self.writer.close()
                if self.close_code != 1000:
                    raise WebSocketClosed(f"the server closed the connection with code {self.close_code}")
                return None
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode != 0xA:
                raise ProtocolError(f"an unexpected frame, opcode {opcode:#x}")

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str:
        message = await self.recv()
        if message is None:
            raise StopAsyncIteration
        return message

    async def close(self) -> None:
        """Close from this side: send a close frame and wait for the server's."""
        if self.writer.is_closing():
            return
        self._send_frame(0x8, struct.pack("!H", 1000))
        try:
            while (await self._frame())[0] != 0x8:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.writer.close()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
