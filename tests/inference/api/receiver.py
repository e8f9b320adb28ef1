"""A webhook receiver on 127.0.0.1 for tests: records what it got, answers what it is told."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _LoopbackServer:
    """Serves a handler class on a free 127.0.0.1 port, in a thread, until stopped."""

    server: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Receiver(_LoopbackServer):
    """Answers each request with the next status in `statuses` (then 200), and keeps every request."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._serve(Handler)
        return self


@dataclass
class SlowReceiver(_LoopbackServer):
    """A receiver that never finishes: it drips a header byte by byte (`drip="headers"`),
    or answers 200 at once and then sends body bytes without end (`drip="body"`)."""

    drip: str
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> SlowReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.drip == "headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                    while not receiver.stopping.wait(0.2):
                        try:
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                while not receiver.stopping.is_set():
                    try:
                        self.wfile.write(b"ok " * 100)
                        self.wfile.flush()
                    except OSError:  # the sender hung up, as it should
                        return
                    receiver.stopping.wait(0.05)

            def log_message(self, *args):
                pass

        self._serve(Handler)
        return self

    def stop(self) -> None:
        self.stopping.set()
        super().stop()
