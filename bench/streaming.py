"""Streaming benchmark (issue 3): time to first token, one fast stream, 200 paced streams, idle sockets.

Runs a real daphne and real Celery workers against the bench database, with
the echo backend, and real websocket clients. Every figure sits next to a
baseline from the same run: the backend called in-process, raw Redis round
trips, one-row PostgreSQL commits, and a bare request to daphne (GET
/healthz, same client), against which the TTFT rows give a ratio: machines
differ several times over in absolute milliseconds.

    .venv/bin/python bench/streaming.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import NamedTuple

from harness import (
    DaphneProcess,
    MachineCpu,
    MachineCpuSpan,
    MachineCpuTimeline,
    WorkerProcess,
    bench_env,
    client_gc_paused,
    percentile,
    postgres_commit_ms,
    report,
    setup_django,
    summary,
)
from wire import HttpConnection, WebSocket, WebSocketClosed

PACED_RATE = 30  # tokens per second in each of the concurrent streams
# Queues of this benchmark's own: a worker warms every enabled model routed to its queues, and the
# models benchmark registers SmolLM2 and MiniLM in the same database (loading them took seconds of
# CPU beside the first figures here).
QUEUE = "bench-streaming"
PACED_QUEUE = "bench-streaming-io"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def register_models():
    from inference.models import AIModel

    models = {
        "bench-echo": (QUEUE, {"tokens": 20}, 1000),
        # `tokens` sets the answer's length; each job's max_tokens cuts it to what the run needs.
        "bench-fast": (QUEUE, {"tokens": 200_000}, 200_000),
        "bench-paced": (PACED_QUEUE, {"tokens": 1000, "tokens_per_second": PACED_RATE}, 1000),
        "bench-idle": ("nobody", {}, 1000),
    }
    for slug, (queue, config, max_tokens) in models.items():
        AIModel.objects.update_or_create(
            slug=slug,
            defaults=dict(
                display_name=slug,
                task="chat",
                backend="echo",
                queue=queue,
                config=config,
                max_output_tokens=max_tokens,
                max_input_chars=100_000,
            ),
        )


def chat(words: int, max_tokens: int | None = None) -> dict:
    body = {"messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(words))}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    return body


class Client:
    """The benchmark's side of the wire: keep-alive HTTP connections, reused, and websockets (bench/wire.py)."""

    def __init__(self, server: DaphneProcess, key: str):
        self.host, self.port = "127.0.0.1", server.port
        self.headers = {"Authorization": f"Bearer {key}"}
        self._idle: list[HttpConnection] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[HttpConnection]:
        """An idle keep-alive connection, or a new one: as many as requests run at once."""
        connection = self._idle.pop() if self._idle else HttpConnection(self.host, self.port, self.headers)
        try:
            yield connection
        except BaseException:
            await connection.close()
            raise
        self._idle.append(connection)

    async def submit(self, model: str, body: dict) -> str:
        async with self.connection() as http:
            return (await http.json("POST", "/api/v1/jobs", {"model": model, "input": body}))["id"]

    async def socket(self, path: str) -> WebSocket:
        return await WebSocket.connect(self.host, self.port, path, self.headers)

    async def close(self) -> None:
        for connection in self._idle:
            await connection.close()


async def measure_redis_rtt(n: int = 2000) -> list[float]:
    from inference.streams import async_redis_client

    client = async_redis_client()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.ping()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def bare_request_ms(client: Client, n: int = 300) -> list[float]:
    """GET /healthz with the same client: this machine's floor for any request to daphne."""
    samples = []
    for i in range(n + 30):
        t0 = time.perf_counter()
        async with client.connection() as http:
            status, _ = await http.request("GET", "/healthz")
        assert status == 200, status
        if i >= 30:
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def inprocess_first_token_ms(n: int = 200) -> list[float]:
    from inference.backends.echo import EchoBackend, EchoConfig

    backend = EchoBackend(EchoConfig(tokens=20))
    body = {**chat(20), "max_tokens": 20}
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        next(iter(backend.stream(body, lambda: False)))
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


class TTFTRun(NamedTuple):
    samples: list[float]  # ms from submit to the first delta at the client
    phases: dict[str, list[float]]  # where each sample's time went: the POST, the handshake, the wait after it
    broken: int
    client_cpu_ms: float  # this process's CPU per sample: the instrument's share of the two cores


async def time_to_first_token(client: Client, runs: int) -> TTFTRun:
    samples, broken = [], 0
    phases: dict[str, list[float]] = {"POST": [], "handshake": [], "first delta": []}
    for i in range(runs + 10):
        if i == 10:
            cpu_start = time.process_time()
        t0 = time.perf_counter()
        job_id = await client.submit("bench-echo", chat(20))
        submitted = time.perf_counter()
        async with await client.socket(f"/ws/jobs/{job_id}/") as ws:
            opened = time.perf_counter()
            first = None
            seqs = []
            async for raw in ws:
                event = json.loads(raw)
                seqs.append(event["seq"])
                if event["type"] == "delta" and first is None:
                    first = time.perf_counter()
            broken += seqs != list(range(1, len(seqs) + 1))
        if i >= 10:  # the first few warm connections and caches
            samples.append((first - t0) * 1000)
            for phase, start, end in (
                ("POST", t0, submitted),
                ("handshake", submitted, opened),
                ("first delta", opened, first),
            ):
                phases[phase].append((end - start) * 1000)
    client_cpu_ms = (time.process_time() - cpu_start) * 1000 / runs
    return TTFTRun(samples, phases, broken, client_cpu_ms)


async def time_to_first_token_streamed(client: Client, runs: int) -> tuple[list[float], int]:
    """The same, with the job's events in the POST's own answer (`stream: true`): one request, no handshake."""
    samples, broken = [], 0
    for i in range(runs + 10):
        t0 = time.perf_counter()
        body = {"model": "bench-echo", "input": chat(20), "stream": True}
        first, seqs = None, []
        async with client.connection() as http:
            async for event in http.event_stream("POST", "/api/v1/jobs", body):
                seqs.append(event["seq"])
                if event["type"] == "delta" and first is None:
                    first = time.perf_counter()
        broken += seqs != list(range(1, len(seqs) + 1))
        if i >= 10:
            samples.append((first - t0) * 1000)
    return samples, broken


async def one_fast_stream(client: Client, tokens: int) -> tuple[float, bool]:
    from inference.models import Job

    job_id = await client.submit("bench-fast", chat(50, max_tokens=tokens))
    text, seqs, first = [], [], None
    async with await client.socket(f"/ws/jobs/{job_id}/") as ws:
        async for raw in ws:
            event = json.loads(raw)
            seqs.append(event["seq"])
            if event["type"] == "delta":
                first = first or time.perf_counter()
                text.append(event["data"]["text"])
            if event["type"] == "done":
                done = time.perf_counter()
    stored = (await Job.objects.aget(id=job_id)).output_text
    intact = "".join(text) == stored and seqs == list(range(1, len(seqs) + 1))
    return tokens / (done - first), intact


def inprocess_generation_rate(tokens: int) -> float:
    from inference.backends.echo import EchoBackend, EchoConfig

    backend = EchoBackend(EchoConfig(tokens=200_000))
    body = {**chat(50), "max_tokens": tokens}
    t0 = time.perf_counter()
    count = sum(1 for _ in backend.stream(body, lambda: False))
    return count / (time.perf_counter() - t0)


# The paced run's three parts, by when a gap ended: from the first delta until every stream had its first,
# while every stream was between its first and last delta (what a stream sees among 199 others),
# and once the first stream had its last.
WINDOWS = ("starting", "all streaming", "ending")


class Window(NamedTuple):
    added_gaps: list[float]  # the added gaps that ended in this part of the run
    machine: MachineCpu | None  # the whole machine's CPU meanwhile


class PacedRun(NamedTuple):
    lateness: list[float]  # ms each delta came after its last token's due time, beyond its stream's best
    added_gaps: list[float]  # ms each gap between two deltas grew on the way (arrival gap - production gap)
    # The same gaps by part of the run (WINDOWS): whether a late one came while the jobs started or
    # ended together (their database writes, handshakes and closes) or while all streamed.
    windows: dict[str, Window]
    # How late this client's own event loop ran a 2 ms timer while the streams ran: a delta the
    # client read late shows here too, and is the instrument's delay, not the platform's.
    client_lag: list[float]
    # The whole machine's CPU over the same span: busy near 100 % means the two cores were full.
    machine: MachineCpu | None
    broken: int
    streams: int
    resumed: int


class Timing(NamedTuple):
    lateness: list[float]
    added_gaps: list[float]


def timing(offsets: list[float]) -> Timing:
    """From each delta's (arrival - production) offset: lateness beyond the stream's best, and added gaps."""
    zero = min(offsets, default=0.0)
    return Timing(
        [(offset - zero) * 1000 for offset in offsets],
        [(later - earlier) * 1000 for earlier, later in itertools.pairwise(offsets)],
    )


async def paced_streams(client: Client, env: dict[str, str], streams: int, tokens: int) -> PacedRun:
    """Lateness of each delta against when the generator produced its last token, and the added inter-delta gaps.

    All the streams run at once, each watched live from its first token: the paced workers start
    (and finish starting) on a queue of their own, the jobs are submitted while no worker serves
    their queue, every watcher connects and waits, and only then are the workers told to consume
    the jobs' queue. (Submitting while earlier streams already run measured submission; watchers
    that connected after their job had ended measured replay; workers started at that moment
    measured their own start, Django's checks and imports, beside the first streams.) A stream's
    earliest (arrival - production) offset is its own zero: lateness is what comes on top of it.
    """
    from inference.models import Job

    # Their threads share a few pooled database connections, as README says to run such workers.
    processes = os.cpu_count() or 2
    pooled = {**env, "DATABASE_POOL": "true"}
    parking = f"{PACED_QUEUE}-parked-{os.getpid()}"
    workers = [
        WorkerProcess(pooled, queues=parking, concurrency=-(-(streams + 10) // processes), pool="threads")
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            worker.start(wait=False)
        for worker in workers:
            worker.wait_ready()
        semaphore = asyncio.Semaphore(20)

        async def submit():
            async with semaphore:
                return await client.submit("bench-paced", chat(10, max_tokens=tokens))

        job_ids = await asyncio.gather(*[submit() for _ in range(streams)])
        lateness: list[float] = []
        added_gaps: list[float] = []
        gaps_by_arrival: list[tuple[float, float]] = []  # (when the gap ended, its added ms)
        first_and_last: list[tuple[float, float]] = []  # each stream's first and last delta's arrival
        received: dict[str, tuple[str, list[int]]] = {}
        broken = resumed = 0
        connected = 0
        all_connected = asyncio.Event()

        # Watchers arrive a few at a time, as real clients do: a single daphne accepting 200 handshakes in
        # the same instant is a connection storm, measured by nothing here, not streaming.
        handshakes = asyncio.Semaphore(25)

        async def watch(job_id: str) -> None:
            """Follow one job to its end, resuming after the last event seen if the connection drops."""
            nonlocal resumed, connected
            seqs, text, offsets, arrivals, produced, done = [], [], [], [], 0, False
            while not done:
                async with handshakes:
                    ws = await client.socket(f"/ws/jobs/{job_id}/?after={seqs[-1] if seqs else 0}")
                if not all_connected.is_set():
                    connected += 1
                    if connected == len(job_ids):
                        all_connected.set()
                try:
                    async with ws:
                        async for raw in ws:
                            now = time.perf_counter()
                            event = json.loads(raw)
                            seqs.append(event["seq"])
                            done = event["type"] == "done"
                            if event["type"] != "delta":
                                continue
                            produced += len(event["data"]["text"].split())
                            text.append(event["data"]["text"])
                            offsets.append(now - (produced - 1) / PACED_RATE)
                            arrivals.append(now)
                except WebSocketClosed:
                    resumed += 1  # as a real client does: reconnect with after=<last seq seen>
            stream_timing = timing(offsets)
            lateness.extend(stream_timing.lateness)
            added_gaps.extend(stream_timing.added_gaps)
            gaps_by_arrival.extend(zip(arrivals[1:], stream_timing.added_gaps, strict=True))
            first_and_last.append((arrivals[0], arrivals[-1]))
            received[job_id] = ("".join(text), seqs)

        watchers = [asyncio.create_task(watch(job_id)) for job_id in job_ids]
        await all_connected.wait()
        client_lag: list[float] = []
        lag_probe = asyncio.create_task(loop_lag(client_lag))
        timeline = MachineCpuTimeline()
        cpu_reader = asyncio.create_task(timeline.run())
        # The paced streams stand for an I/O-bound remote model: thread pools, one process per core
        # (one process of 210 threads is held back by its own GIL long before the machine is busy).
        from config.celery import app

        consuming_from = timeline.read()
        app.control.add_consumer(PACED_QUEUE, destination=[worker.name for worker in workers])
        await asyncio.gather(*watchers)
        ended = timeline.read()
        machine = timeline.between(consuming_from, ended)
        lag_probe.cancel()
        cpu_reader.cancel()
        # Checked once every stream has ended: this client's database reads are not the platform's time.
        async for job in Job.objects.filter(id__in=job_ids).only("id", "output_text"):
            text, seqs = received[str(job.id)]
            broken += not (text == job.output_text and seqs == list(range(1, len(seqs) + 1)))
        all_streaming_from = max(first for first, _ in first_and_last)
        all_streaming_until = max(all_streaming_from, min(last for _, last in first_and_last))
        # From the first delta: the workers take a moment to hear that they should consume.
        bounds = (min(first for first, _ in first_and_last), all_streaming_from, all_streaming_until, ended)
        windows = {
            name: Window([gap for at, gap in gaps_by_arrival if start <= at < end], timeline.between(start, end))
            for name, (start, end) in zip(WINDOWS, itertools.pairwise(bounds), strict=True)
        }
        return PacedRun(lateness, added_gaps, windows, client_lag, machine, broken, len(job_ids), resumed)
    finally:
        for worker in workers:
            worker.stop()


async def loop_lag(samples: list[float], interval: float = 0.002) -> None:
    """Append, until canceled, how many ms past its due time each `interval` sleep of this event loop woke."""
    while True:
        due = time.perf_counter() + interval
        await asyncio.sleep(interval)
        samples.append((time.perf_counter() - due) * 1000)


def inprocess_paced_timing(tokens: int) -> Timing:
    """The same pacing in-process, several generators at once: what the generator alone adds."""
    from inference.backends.echo import EchoBackend, EchoConfig

    backend = EchoBackend(EchoConfig(tokens=1000, tokens_per_second=PACED_RATE))
    lateness: list[float] = []
    added_gaps: list[float] = []

    def run():
        offsets = [
            time.perf_counter() - index / PACED_RATE
            for index, _ in enumerate(backend.stream({**chat(10), "max_tokens": tokens}, lambda: False))
        ]
        stream_timing = timing(offsets)
        lateness.extend(stream_timing.lateness)
        added_gaps.extend(stream_timing.added_gaps)

    threads = [threading.Thread(target=run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Timing(lateness, added_gaps)


async def idle_socket_memory(client: Client, pid: int, sockets: int, cycles: int) -> tuple[list[float], list[int]]:
    job_id = await client.submit("bench-idle", chat(3))  # never runs: its socket stays idle
    per_socket, baselines = [], []
    for _ in range(cycles):
        await asyncio.sleep(1)
        before = rss_kib(pid)
        baselines.append(before)
        opened = []
        for _ in range(sockets):
            ws = await client.socket(f"/ws/jobs/{job_id}/")
            opened.append(ws)
        await asyncio.sleep(2)
        per_socket.append((rss_kib(pid) - before) / sockets)
        for ws in opened:
            await ws.close()
        await asyncio.sleep(1)
    return per_socket, baselines


def prepare() -> tuple[dict[str, str], str]:
    env = bench_env()
    setup_django(env)
    from accounts.models import Plan, User
    from accounts.services import api_key_create
    from inference.models import Job

    register_models()
    # Limits high enough never to refuse: this measures streaming, not quotas.
    plan, _ = Plan.objects.update_or_create(
        name="bench-streaming",
        defaults={"concurrent_jobs": 10_000, "requests_per_minute": 10_000_000, "tokens_per_day": None},
    )
    user, _ = User.objects.update_or_create(username="bench", defaults={"plan": plan})
    Job.objects.filter(owner=user, status__in=["queued", "running"]).update(status="canceled")
    return env, api_key_create(user=user, name="bench").plaintext


def python_loop_ms(n: int = 20) -> float:
    """This machine's speed at plain Python, for comparing runs on different days (the same loop each time)."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        sum(range(1_000_000))
        samples.append((time.perf_counter() - t0) * 1000)
    return percentile(samples, 50)


async def main(env: dict[str, str], key: str, quick: bool) -> None:
    idle_load = os.getloadavg()[0]  # the goals are for an idle machine: was it, before this run started anything?
    loop_ms = python_loop_ms()
    cpu_over_run = MachineCpuSpan()
    daphne = DaphneProcess(env).start()
    fast_worker = WorkerProcess(env, queues=QUEUE, concurrency=1).start()
    client = Client(daphne, key)
    try:
        rtt = await measure_redis_rtt()
        commit = postgres_commit_ms(env["DATABASE_URL"])
        bare = await bare_request_ms(client)
        inproc_first = inprocess_first_token_ms()
        with client_gc_paused():
            ttft = await time_to_first_token(client, 30 if quick else 100)
        added = [sample - statistics_median(inproc_first) for sample in ttft.samples]
        with client_gc_paused():
            ttft_streamed, streamed_broken = await time_to_first_token_streamed(client, 30 if quick else 100)
        added_streamed = [sample - statistics_median(inproc_first) for sample in ttft_streamed]

        fast_tokens = 20_000 if quick else 100_000
        with client_gc_paused():
            fast_rate, fast_intact = await one_fast_stream(client, fast_tokens)
        inproc_rate = inprocess_generation_rate(fast_tokens)

        streams = 50 if quick else 200
        paced_tokens = 60 if quick else 150
        with client_gc_paused():
            paced = await paced_streams(client, env, streams, paced_tokens)
        inproc_paced = inprocess_paced_timing(paced_tokens)

        per_socket, baselines = await idle_socket_memory(client, daphne.process.pid, 200 if quick else 500, 6)
    finally:
        await client.close()
        fast_worker.stop()
        daphne.stop()
    machine = cpu_over_run.end()

    lost = ttft.broken + streamed_broken + paced.broken + (not fast_intact)
    rows = [
        {
            "metric": "machine: load average before the run / Python loop (ms)",
            "measured": f"{idle_load:.2f} / {loop_ms:.1f}",
            "baseline": "-",
            "goal": "(baseline)",
        },
        {
            # A virtual machine's cores are shared with the host's other guests: what they took.
            "metric": "machine: CPU stolen by the host over the run (%)",
            "measured": "-" if machine is None else f"{machine.stolen * 100:.1f}",
            "baseline": "-",
            "goal": "(baseline)",
        },
        {
            "metric": "redis round trip p50 / p99 (ms)",
            "measured": f"{percentile(rtt, 50):.2f} / {percentile(rtt, 99):.2f}",
            "baseline": "-",
            "goal": "(baseline)",
        },
        {
            "metric": "postgres commit, one-row INSERT p50 / p99 (ms)",
            "measured": f"{percentile(commit, 50):.2f} / {percentile(commit, 99):.2f}",
            "baseline": "-",
            "goal": "(baseline)",
        },
        {
            # Machines differ: TTFT in these is the ratio column of the two TTFT p50 rows below.
            "metric": "bare daphne request, GET /healthz p50 / p99 (ms)",
            "measured": f"{percentile(bare, 50):.2f} / {percentile(bare, 99):.2f}",
            "baseline": "-",
            "goal": "(baseline)",
        },
        {
            "metric": "TTFT added, POST then websocket p50 (ms)",
            "measured": f"{percentile(added, 50):.1f}",
            "baseline": f"{statistics_median(inproc_first):.3f}",
            "ratio": percentile(added, 50) / percentile(bare, 50),
            "goal": "<= 10",
            "ok": percentile(added, 50) <= 10,
        },
        {
            "metric": "TTFT added, POST then websocket p99 (ms)",
            "measured": f"{percentile(added, 99):.1f}",
            "baseline": f"{percentile(inproc_first, 99):.3f}",
            "goal": "<= 30",
            "ok": percentile(added, 99) <= 30,
        },
        {
            # Where the time goes: the POST's answer, the websocket's handshake, then its first delta.
            "metric": "TTFT phases p50: " + " / ".join(ttft.phases) + " (ms)",
            "measured": " / ".join(f"{percentile(values, 50):.1f}" for values in ttft.phases.values()),
            "baseline": "-",
            "goal": "(reported)",
        },
        {
            # The client shares the machine's cores with daphne, the worker and PostgreSQL.
            "metric": "TTFT: the benchmark client's own CPU per sample (ms)",
            "measured": f"{ttft.client_cpu_ms:.2f}",
            "baseline": "-",
            "goal": "(reported)",
        },
        {
            # The same job, its events in the POST's own answer: one request instead of a POST and a websocket.
            "metric": "TTFT added, streamed submit p50 / p99 (ms)",
            "measured": f"{percentile(added_streamed, 50):.1f} / {percentile(added_streamed, 99):.1f}",
            "baseline": f"{statistics_median(inproc_first):.3f}",
            "ratio": percentile(added_streamed, 50) / percentile(bare, 50),
            "goal": "<= 10 / <= 30",
            "ok": percentile(added_streamed, 50) <= 10 and percentile(added_streamed, 99) <= 30,
        },
        {
            "metric": f"one stream, {fast_tokens} tokens (tokens/s)",
            "measured": f"{fast_rate:,.0f}",
            "baseline": f"{inproc_rate:,.0f}",
            "ratio": fast_rate / inproc_rate,
            "goal": ">= 20,000",
            "ok": fast_rate >= 20_000,
        },
        {
            # The figure: how much longer the gap between two deltas is at the client than
            # at the generator.
            "metric": f"{paced.streams} streams x {PACED_RATE} tok/s: added inter-delta p99 (ms)",
            "measured": f"{percentile(paced.added_gaps, 99):.1f}",
            "baseline": f"{percentile(inproc_paced.added_gaps, 99):.1f}",
            "goal": "added <= 20",
            "ok": percentile(paced.added_gaps, 99) - percentile(inproc_paced.added_gaps, 99) <= 20,
        },
        {
            # Where the p99 above comes from: the seconds when the 200 jobs start or end together (their
            # database writes, handshakes and closes), or the ones between, while all of them stream.
            "metric": f"{paced.streams} streams: added inter-delta p99 {' / '.join(WINDOWS)} (ms)",
            "measured": " / ".join(f"{percentile(window.added_gaps, 99):.1f}" for window in paced.windows.values()),
            "baseline": f"{percentile(inproc_paced.added_gaps, 99):.1f}",
            "goal": "(reported)",
        },
        {
            # Stricter: a stall counts in every delta it delays, not only in the gap where it began.
            "metric": f"{paced.streams} streams x {PACED_RATE} tok/s: delta lateness p50 / p99 (ms)",
            "measured": f"{percentile(paced.lateness, 50):.1f} / {percentile(paced.lateness, 99):.1f}",
            "baseline": f"{percentile(inproc_paced.lateness, 99):.1f}",
            "goal": "(reported)",
        },
        {
            # The instrument's share: the client's event loop shares the two cores with the platform.
            "metric": f"{paced.streams} streams: the client's own loop lag p99 / max (ms)",
            "measured": f"{percentile(paced.client_lag, 99):.1f} / {max(paced.client_lag, default=0):.1f}",
            "goal": "(reported)",
        },
        {
            # 100 % busy: the two cores were full, and every process, the client's too, waited for one.
            "metric": f"{paced.streams} streams: machine CPU busy / stolen by the host (%)",
            "measured": cpu_share(paced.machine),
            "goal": "(reported)",
        },
        {
            # Busy in one part only: what that part asks of the machine (the jobs' start, their end).
            "metric": f"{paced.streams} streams: machine CPU busy {' / '.join(WINDOWS)} (%)",
            "measured": " / ".join(
                "-" if part.machine is None else f"{part.machine.busy * 100:.0f}" for part in paced.windows.values()
            ),
            "goal": "(reported)",
        },
        {
            "metric": f"{paced.streams} streams: connections dropped and resumed with after=N",
            "measured": str(paced.resumed),
            "goal": "(reported)",
        },
        {
            "metric": "streams with a lost/duplicate/reordered token",
            "measured": str(lost),
            "goal": "0",
            "ok": lost == 0,
        },
        {
            # Daphne's RSS growth while each cycle's sockets are open, per socket. The first cycle's is what a
            # socket costs; later cycles reuse the memory the allocator kept from the first (near 0 when flat).
            "metric": "server memory per idle websocket, cycle by cycle (KiB)",
            "measured": " / ".join(f"{v:.1f}" for v in per_socket),
            "baseline": f"rss {baselines[0] // 1024} MiB",
            "goal": "<= 64, flat",
            "ok": max(per_socket) <= 64,
        },
        {
            "metric": "daphne RSS before each cycle (MiB)",
            "measured": " / ".join(str(b // 1024) for b in baselines),
            # The allocator keeps the first cycles' peak (a few MiB, once): a leak grows at every cycle.
            "goal": "last 3 within 2 %",
            "ok": max(baselines[-3:]) - min(baselines[-3:]) <= 0.02 * min(baselines[-3:]),
        },
    ]
    report(
        "streaming",
        rows,
        {
            "load_average_before": idle_load,
            "python_loop_ms": loop_ms,
            "bare_request_ms": summary(bare),
            "postgres_commit_ms": summary(commit),
            "ttft_ms": summary(added),
            **{f"ttft_phase_{name.replace(' ', '_')}_ms": summary(values) for name, values in ttft.phases.items()},
            "ttft_streamed_submit_ms": summary(added_streamed),
            "lateness_ms": summary(paced.lateness),
            "added_inter_delta_ms": summary(paced.added_gaps),
            **{
                f"added_inter_delta_{name.replace(' ', '_')}_ms": summary(window.added_gaps)
                for name, window in paced.windows.items()
            },
            "client_loop_lag_ms": summary(paced.client_lag),
            "machine_cpu": machine._asdict() if machine else None,
            "paced_machine_cpu": paced.machine._asdict() if paced.machine else None,
            **{
                f"paced_machine_cpu_{name.replace(' ', '_')}": window.machine._asdict() if window.machine else None
                for name, window in paced.windows.items()
            },
            "inprocess_lateness_ms": summary(inproc_paced.lateness),
            "inprocess_added_inter_delta_ms": summary(inproc_paced.added_gaps),
        },
    )


def cpu_share(cpu: MachineCpu | None) -> str:
    return "-" if cpu is None else f"{cpu.busy * 100:.0f} / {cpu.stolen * 100:.1f}"


def statistics_median(values: list[float]) -> float:
    return percentile(values, 50)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    args = parser.parse_args()
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(main(*prepare(), args.quick))
