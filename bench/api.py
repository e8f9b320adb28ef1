"""`POST /api/v1/jobs` against a bare Django view, both served by one daphne, in the same run.

The bare view (a sync `JsonResponse`, no database) exists only in this benchmark's own URLconf,
written to a temporary directory: the product has no such view. Both endpoints go through the
same settings, middleware and daphne process.

Two measurements, each alternated bare / jobs so that drift on a busy machine hits both alike:

- throughput: a closed loop of CONCURRENCY clients for DURATION seconds; requests/s and p99.
- latency at a rate: an open loop at fixed rates (requests are scheduled on a clock and timed
  from their scheduled start, so a stall is not hidden); the rate used is the highest in RATES
  at which the bare view's p99 stays under 10 ms (and at every rate below it), and the job
  endpoint's p99 is reported there.
  Each rate runs for RATE_SECONDS, or longer at low rates: every p99 is over 300 requests or more.
  The job endpoint's own p50 / p99 at the rates below that one are reported too, up to the first
  where its p99 passes the goal: where the bare view holds even the highest rate, they show what
  the job endpoint holds.

Goals (issue 5): jobs throughput >= 0.35 x bare, and jobs p99 <= 50 ms at that rate.

The jobs go to a queue no worker serves; a janitor process marks them finished every
0.2 s, as if workers on other machines drained the queue, so the API host's figures do not
include model work and the user's concurrency limit is checked against a short queue. The
benchmark user has a plan with a concurrency limit and a request rate limit (both enforced on
every request, high enough never to refuse) and no token quota, like the default plan.

    .venv/bin/python bench/api.py [--duration 8] [--concurrency 32] [--rounds 2] [--strict]

Needs PostgreSQL and Redis (`make services`): BENCH_API_DATABASE_URL (default: database
djinn_bench_api on the local PostgreSQL, created if missing) and BENCH_API_REDIS_URL (default:
Redis db 13). Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from harness import vacuum_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djinn_bench_api")
REDIS_URL = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/13")
QUEUE = "bench-api-sink"
RATES = (10, 25, 50, 75, 100, 150, 200, 300, 400)
RATE_SECONDS = 10
# A p99 over 100 requests is their maximum: one pause anywhere on the machine decides it. Low rates
# run longer, so that every p99 is taken over at least this many requests.
RATE_MIN_REQUESTS = 300
BARE_P99_MS = 10.0
GOAL_THROUGHPUT_RATIO = 0.35
GOAL_P99_MS = 50.0
# A request unanswered this long is counted as an error and its connection dropped, so that one
# lost response cannot hold the whole benchmark.
REQUEST_TIMEOUT_S = 30.0
JOB_BODY = {"model": "bench-echo", "input": {"messages": [{"role": "user", "content": "benchmark this request"}]}}

BENCH_SETTINGS = """
from config.settings import *  # noqa: F403

ROOT_URLCONF = "djinn_bench_api_urls"
"""
BENCH_URLS = """
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare(request):
    return JsonResponse({"ok": True}, status=202)


urlpatterns = [path("bench/bare", bare), *product_urlpatterns]
"""


def configure_environment() -> dict[str, str]:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX="djinn-bench-api",
        DATABASE_CONN_MAX_AGE="60",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-only-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
    )
    return dict(os.environ)


def ensure_database() -> None:
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def prepare() -> str:
    """Migrate, register the model, make the user with their plan; returns an API key."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Plan, User
    from accounts.services import api_key_create
    from inference.models import AIModel, Job

    AIModel.objects.update_or_create(
        slug="bench-echo",
        defaults={"display_name": "Bench echo", "task": "chat", "backend": "echo", "queue": QUEUE, "enabled": True},
    )
    plan, _ = Plan.objects.update_or_create(
        name="bench", defaults={"concurrent_jobs": 1000, "requests_per_minute": 10_000_000, "tokens_per_day": None}
    )
    user, _ = User.objects.update_or_create(username="bench-api", defaults={"plan": plan})
    Job.objects.filter(owner=user, status__in=["queued", "running"]).update(status="succeeded")
    vacuum_database(DATABASE_URL)  # each run leaves thousands of dead job rows (harness.py says why it matters)
    return api_key_create(user=user, name="bench").plaintext


def janitor(env: dict[str, str], stopping) -> None:
    """Mark the benchmark's queued jobs finished every 0.2 s, as workers elsewhere would.

    It runs in a process of its own: in the clients' process its queries would hold the GIL
    while a request is due, and the clients would measure themselves.
    """
    os.environ.update(env)
    import django

    django.setup()
    from django.utils import timezone

    from inference.models import Job

    while not stopping.wait(0.2):
        Job.objects.filter(owner__username="bench-api", status="queued").update(
            status="succeeded", finished_at=timezone.now()
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(env: dict[str, str], module_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "djinn_bench_api_settings",
        "PYTHONPATH": os.pathsep.join([module_dir, str(ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"daphne exited:\n{process.stderr.read().decode()}")
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("daphne did not start")


def rate_seconds(rate: int) -> float:
    return max(RATE_SECONDS, RATE_MIN_REQUESTS / rate)


def percentile(values: list[float], fraction: float) -> float:
    if not values:  # every request failed
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Connection:
    """A minimal keep-alive HTTP/1.1 client: cheap enough that the server, not the client, is measured."""

    def __init__(self, host: str, port: int, request: bytes):
        self.host, self.port, self.request = host, port, request

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def send(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def build_request(url: str, path: str, headers: dict, body: dict) -> tuple[str, int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(payload)}", *(f"{name}: {value}" for name, value in headers.items())]
    return host, int(port), ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def closed_loop(url: str, path: str, headers: dict, body: dict, concurrency: int, duration: float) -> dict:
    latencies: list[float] = []
    errors = 0
    host, port, request = build_request(url, path, headers, body)
    connections = [await Connection(host, port, request).open() for _ in range(concurrency)]
    stop = time.perf_counter() + duration

    async def worker(connection: Connection):
        nonlocal errors
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status = await connection.send()
            except TimeoutError:  # this connection is spent: its worker stops
                errors += 1
                return
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status != 202

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


async def open_loop(url: str, path: str, headers: dict, body: dict, rate: int, duration: float) -> dict:
    """Requests scheduled `1/rate` apart, each on an idle connection (a new one if none is idle)."""
    latencies: list[float] = []
    errors = 0
    host, port, request = build_request(url, path, headers, body)
    idle = [await Connection(host, port, request).open() for _ in range(min(64, rate // 5 + 2))]

    async def one(scheduled: float):
        nonlocal errors
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        connection = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                connection = idle.pop() if idle else await Connection(host, port, request).open()
                status = await connection.send()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            # Far past what the server holds, it refuses, resets or leaves connections: errors, not a crash.
            errors += 1
            if connection is not None:
                connection.close()
            return
        latencies.append((time.perf_counter() - scheduled) * 1000)
        idle.append(connection)
        errors += status != 202

    start = time.perf_counter() + 0.2
    await asyncio.gather(*(one(start + i / rate) for i in range(int(rate * duration))))
    for connection in idle:
        connection.close()
    return {
        "rate": rate,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternated bare/jobs throughput runs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()

    env = configure_environment()
    ensure_database()
    key = prepare()
    spawn = multiprocessing.get_context("spawn")
    janitor_stopping = spawn.Event()
    janitor_process = spawn.Process(target=janitor, args=(env, janitor_stopping), daemon=True)
    janitor_process.start()
    module_dir = tempfile.mkdtemp(prefix="djinn-bench-api-")
    Path(module_dir, "djinn_bench_api_settings.py").write_text(BENCH_SETTINGS)
    Path(module_dir, "djinn_bench_api_urls.py").write_text(BENCH_URLS)
    daphne, url = start_daphne(env, module_dir)
    auth = {"Authorization": f"Bearer {key}"}
    targets = {"bare": ("/bench/bare", {}, {"ok": True}), "jobs": ("/api/v1/jobs", auth, JOB_BODY)}
    try:
        for path, headers, body in targets.values():  # warm up both
            asyncio.run(closed_loop(url, path, headers, body, args.concurrency, 2))

        throughput: dict[str, list[dict]] = {"bare": [], "jobs": []}
        for _ in range(args.rounds):
            for name, (path, headers, body) in targets.items():
                throughput[name].append(
                    asyncio.run(closed_loop(url, path, headers, body, args.concurrency, args.duration))
                )

        sweep: list[dict] = []
        chosen = None
        for rate in RATES:
            path, headers, body = targets["bare"]
            bare = asyncio.run(open_loop(url, path, headers, body, rate, rate_seconds(rate)))
            sweep.append({"target": "bare", **bare})
            if bare["p99_ms"] >= BARE_P99_MS:
                break
            chosen = rate
        # Where the bare view never stays under the bar (a busy machine), measure at the lowest rate
        # anyway: the figures are reported, and the goal is marked missed.
        measured_rate = chosen if chosen is not None else RATES[0]
        # The bare view again, then the job endpoint's own curve (reported beside the goal, up to the
        # first rate it cannot hold), and only then the job endpoint at the chosen rate: a rate past
        # its capacity leaves thousands of connections to close and queued jobs to finish, and what
        # was measured in that aftermath read p99s of 0.1 to 1 s on a machine holding them at 4-15 ms.
        bare_again = asyncio.run(open_loop(url, *targets["bare"], measured_rate, rate_seconds(measured_rate)))
        path, headers, body = targets["jobs"]
        jobs_sweep: list[dict] = []
        for rate in RATES:
            if rate >= measured_rate:
                break
            jobs_sweep.append(asyncio.run(open_loop(url, path, headers, body, rate, rate_seconds(rate))))
            if jobs_sweep[-1]["p99_ms"] > GOAL_P99_MS:
                break
        at_rate = asyncio.run(open_loop(url, path, headers, body, measured_rate, rate_seconds(measured_rate)))
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=15)
        except subprocess.TimeoutExpired:  # still answering a backlog of requests an overload left it
            daphne.kill()
            daphne.wait()
        janitor_stopping.set()
        janitor_process.join(timeout=15)
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()

    rps = {name: statistics.median(run["rps"] for run in runs) for name, runs in throughput.items()}
    ratio = rps["jobs"] / rps["bare"]
    result = {
        "benchmark": "api",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count()},
        "settings": {"duration": args.duration, "concurrency": args.concurrency, "rounds": args.rounds},
        "throughput": throughput,
        "throughput_rps": rps,
        "throughput_ratio": round(ratio, 3),
        "rate_sweep": sweep,
        "jobs_rate_sweep": jobs_sweep,
        "rate": chosen,
        "measured_rate": measured_rate,
        "jobs_at_rate": at_rate,
        "bare_at_rate": bare_again,
        "goals": {
            "throughput_ratio": GOAL_THROUGHPUT_RATIO,
            "p99_ms_at_rate": GOAL_P99_MS,
            "bare_p99_ms_defines_rate": BARE_P99_MS,
        },
    }
    met_ratio = ratio >= GOAL_THROUGHPUT_RATIO
    met_p99 = chosen is not None and at_rate["p99_ms"] <= GOAL_P99_MS
    result["met"] = {"throughput_ratio": met_ratio, "p99": met_p99}

    print(f"\nPOST /api/v1/jobs vs a bare Django view, one daphne, {os.cpu_count()} CPUs")
    print(f"{'':28}{'bare':>12}{'jobs':>12}")
    print(f"{'throughput (req/s, median)':28}{rps['bare']:>12.1f}{rps['jobs']:>12.1f}")
    for name in ("bare", "jobs"):
        p99s = ", ".join(f"{run['p99_ms']:.1f}" for run in throughput[name])
        print(f"  {name} closed-loop p99 (ms): {p99s}")
    print(f"{'ratio jobs/bare':28}{ratio:>24.3f}  (goal >= {GOAL_THROUGHPUT_RATIO}) {'ok' if met_ratio else 'MISSED'}")
    for row in sweep:
        print(f"  bare at {row['rate']:>4} req/s: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms")
    if chosen is None:
        print(f"the bare view never stayed under {BARE_P99_MS} ms p99, even at {RATES[0]} req/s (a busy machine?)")
    print(
        f"at {measured_rate} req/s (bare p99 {result['bare_at_rate']['p99_ms']:.2f} ms):"
        f" jobs p50 {at_rate['p50_ms']:.2f} ms,"
        f" p99 {at_rate['p99_ms']:.2f} ms, errors {at_rate['errors']}"
        f"  (goal <= {GOAL_P99_MS} ms) {'ok' if met_p99 else 'MISSED'}"
    )
    for row in jobs_sweep:
        print(f"  jobs at {row['rate']:>4} req/s: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms (reported)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 1 if args.strict and not (met_ratio and met_p99) else 0


if __name__ == "__main__":
    sys.exit(main())
