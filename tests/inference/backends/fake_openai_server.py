"""A small OpenAI-compatible server for tests, on 127.0.0.1 only: the edge of the world.

It streams chat and completion answers as server-sent events, a chunk every
few milliseconds, answers embeddings, checks the bearer key, records every
request, and fails on demand (an HTTP status, a dropped connection after the
first token, or a stall) so the backend's error handling can be watched.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-fake-server"


@dataclass
class Failure:
    """What the next request gets instead of an answer."""

    status: int | None = None  # an HTTP error with an OpenAI-style error body
    retry_after: str | None = None
    drop_after_tokens: int | None = None  # stream this many tokens, then cut the connection
    stall_seconds: float | None = None  # send headers, then nothing for this long


@dataclass
class FakeOpenAIServer:
    words: list[str] = field(default_factory=lambda: ["Hello", " from", " a", " remote", " model", "!"])
    chunk_delay: float = 0.01
    pauses: dict[int, float] = field(default_factory=dict)  # token index -> seconds to wait before it
    dimensions: int = 16
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: deque[Failure] = field(default_factory=deque)

    def start(self) -> FakeOpenAIServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def answer_for(self, body: dict[str, Any]) -> list[str]:
        """The tokens this server streams for a request: its words, cut by max_tokens and stop."""
        words = list(self.words)[: body.get("max_tokens") or len(self.words)]
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        text = ""
        for index, word in enumerate(words):
            if any(stop in text + word for stop in stops):
                return words[:index]
            text += word
        return words

    def vector_for(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest()
        return [(digest[i] - 127.5) / 10 for i in range(self.dimensions)]


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the stream ends when the connection closes, as SSE over HTTP/1.0 does

        def log_message(self, format, *args):  # keep pytest's output clean
            return

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            authorization = self.headers.get("Authorization")
            server.requests.append({"path": self.path, "body": body, "authorization": authorization})
            if authorization != f"Bearer {API_KEY}":
                return self._error(401, "Incorrect API key provided.")
            failure = server.failures.popleft() if server.failures else Failure()
            if failure.status:
                return self._error(failure.status, f"scripted failure {failure.status}", failure.retry_after)
            if self.path == "/v1/embeddings":
                return self._embeddings(body)
            if self.path in ("/v1/chat/completions", "/v1/completions"):
                return self._stream(body, chat=self.path.endswith("chat/completions"), failure=failure)
            return self._error(404, f"no route {self.path}")

        def _error(self, status: int, message: str, retry_after: str | None = None):
            payload = json.dumps({"error": {"message": message, "type": "test", "code": None}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(payload)

        def _embeddings(self, body: dict[str, Any]):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": server.vector_for(t)} for i, t in enumerate(texts)]
            data.reverse()  # servers may answer out of order; `index` says which is which
            tokens = sum(math.ceil(len(text) / 4) for text in texts)
            payload = json.dumps({"object": "list", "data": data, "usage": {"prompt_tokens": tokens}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: dict[str, Any], *, chat: bool, failure: Failure):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if failure.stall_seconds:
                time.sleep(failure.stall_seconds)
                return
            self._event(": keep-alive comment, ignored by clients\n")
            if chat:
                self._event(self._chunk(chat, {"role": "assistant", "content": ""}))
            for index, word in enumerate(server.answer_for(body)):
                if failure.drop_after_tokens is not None and index >= failure.drop_after_tokens:
                    self.wfile.flush()
                    self.connection.shutdown(2)  # cut mid-stream, without [DONE]
                    return
                time.sleep(server.pauses.get(index, server.chunk_delay))
                self._event(self._chunk(chat, {"content": word} if chat else word))
            self._event(self._chunk(chat, {} if chat else "", finish_reason="stop"))
            self._event("data: [DONE]\n\n")

        def _chunk(self, chat: bool, content: Any, finish_reason: str | None = None) -> str:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
            choice["delta" if chat else "text"] = content
            kind = "chat.completion.chunk" if chat else "text_completion"
            return f"data: {json.dumps({'id': 'fake-1', 'object': kind, 'choices': [choice]})}\n\n"

        def _event(self, text: str):
            self.wfile.write(text.encode())
            self.wfile.flush()

    return Handler
