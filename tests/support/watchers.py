"""Real websocket and SSE clients that watch a job the way integrators do."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


@dataclass
class Watch:
    events: list[dict] = field(default_factory=list)
    close_code: int | None = None

    @property
    def text(self) -> str:
        """What a client shows: the deltas since the last restart."""
        shown: list[str] = []
        for event in self.events:
            if event["type"] == "status" and event["data"].get("restart"):
                shown.clear()
            elif event["type"] == "delta":
                shown.append(event["data"]["text"])
        return "".join(shown)

    @property
    def seqs(self) -> list[int]:
        return [event["seq"] for event in self.events]


def open_job_socket(server, job_id, key: str | None = None, after: int = 0, cookie: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if cookie:
        headers["Cookie"] = cookie
    return connect(f"{server.ws_url}/ws/jobs/{job_id}/?after={after}", additional_headers=headers, **kwargs)


def watch_socket(ws, limit: int | None = None, timeout: float = 30) -> Watch:
    """Read events until the server closes (or `limit` events arrived)."""
    watch = Watch()
    try:
        while limit is None or len(watch.events) < limit:
            watch.events.append(json.loads(ws.recv(timeout=timeout)))
    except ConnectionClosed as closed:
        watch.close_code = closed.rcvd.code if closed.rcvd else None
    return watch


def watch_job(server, job_id, key: str | None = None, after: int = 0, limit: int | None = None, **kwargs) -> Watch:
    with open_job_socket(server, job_id, key, after, **kwargs) as ws:
        return watch_socket(ws, limit)


def watch_sse(
    server, job_id, key: str, after: int | None = None, last_event_id: int | None = None, limit: int | None = None
) -> tuple[int, Watch]:
    headers = {"Authorization": f"Bearer {key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {} if after is None else {"after": after}
    url = f"{server.url}/api/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=headers, params=params, timeout=30) as response:
        return response.status_code, read_sse(response, limit)


def submit_streamed(server, key: str, body: dict, headers: dict | None = None) -> tuple[httpx.Response, Watch]:
    """POST /api/v1/jobs with `stream: true`: the response (headers only), and the events it streamed."""
    headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    url = f"{server.url}/api/v1/jobs"
    with httpx.stream("POST", url, headers=headers, json={**body, "stream": True}, timeout=30) as response:
        return response, read_sse(response)


def read_sse(response: httpx.Response, limit: int | None = None) -> Watch:
    """The events of an SSE response; for any other answer, its JSON body as the only event."""
    watch = Watch()
    if response.status_code != 200:
        response.read()
        watch.events.append(response.json())
        return watch
    data_lines: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data_lines.append(line.removeprefix("data: "))
        elif line == "" and data_lines:
            watch.events.append(json.loads("\n".join(data_lines)))
            data_lines = []
            if limit is not None and len(watch.events) >= limit:
                break
    return watch


def follow_through_outages(server, job_id: str, key: str, on_event) -> Watch:
    """Watch a job as a client does: told to come back (4503) or cut, it reconnects with `after=N`."""
    watch = Watch()
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = watch.seqs[-1] if watch.events else 0
        try:
            with connect(f"{server.ws_url}/ws/jobs/{job_id}/?after={after}", additional_headers=headers) as ws:
                while True:
                    watch.events.append(json.loads(ws.recv(timeout=30)))
                    on_event(watch)
        except ConnectionClosed as closed:
            watch.close_code = closed.rcvd.code if closed.rcvd else None
            if watch.close_code == 1000:
                return watch
        except OSError:
            pass  # refused while daphne's Redis is away: try again, as a client backs off
        time.sleep(0.2)
    raise AssertionError(f"the watcher of {job_id} never saw its job end")
