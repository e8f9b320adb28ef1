"""What every benchmark shares: its own database and Redis, real platform processes, and a report.

Benchmarks run the platform as production does (DEBUG off, daphne, Celery
workers) against a dedicated PostgreSQL database and Redis database, so they
never touch development or test data. Figures are printed as a table next to
a baseline measured in the same run, and saved as JSON in bench/results/.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

from tests.support.processes import DaphneProcess, WorkerProcess, wait_for  # noqa: E402

__all__ = [
    "DaphneProcess",
    "MachineCpu",
    "MachineCpuSpan",
    "MachineCpuTimeline",
    "WorkerProcess",
    "bench_env",
    "client_gc_paused",
    "percentile",
    "postgres_commit_ms",
    "report",
    "setup_django",
    "vacuum_database",
    "wait_for",
]


def bench_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JOB_", "STREAM_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djinn_bench"),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
        REDIS_KEY_PREFIX="djinn-bench",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "x" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SESSION_COOKIE_SECURE="false",
        DJANGO_CSRF_COOKIE_SECURE="false",
        LOG_LEVEL="WARNING",
        WEBSOCKETS_PER_USER="100000",  # one user opens every stream and idle socket of a benchmark
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Point this process at the bench database (creating it if needed), migrate, vacuum, flush Redis."""
    os.environ.update(env)
    import django
    import psycopg

    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    vacuum_database(env["DATABASE_URL"])
    from inference.streams import redis_client

    redis_client().flushdb()


def vacuum_database(database_url: str) -> None:
    """Clear the dead rows earlier runs left, as PostgreSQL's autovacuum does between them where it runs.

    Where it does not (this machine's PostgreSQL runs with `autovacuum = off`), every run of the
    streaming benchmark left some 1,100 dead job rows behind, and each later run measured them all
    again: after 25 runs, 27,000 of them, in the job table and all nine of its indexes.
    """
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE")


def postgres_commit_ms(database_url: str, n: int = 300) -> list[float]:
    """One-row INSERTs, each its own transaction: this machine's floor for a durable database write.

    Every job request commits, and a commit waits for PostgreSQL to flush its WAL to disk. The disk
    is shared with the rest of the host; where its flushes slow down, so does every POST, while the
    bare request and the Python loop do not.
    """
    import psycopg

    samples = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz)")
        for i in range(n + 30):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe (at) VALUES (now())")
            if i >= 30:
                samples.append((time.perf_counter() - t0) * 1000)
        conn.execute("DROP TABLE bench_commit_probe")
    return samples


@contextlib.contextmanager
def client_gc_paused():
    """No garbage collection in this (the measuring) process while the block runs, as `timeit` does.

    The client holds Django, its models and every sample it took: a full collection of that heap
    stopped its event loop for 50-120 ms, and every stream it was reading showed the pause as a
    late delta, a stall of the client's that no server caused.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class MachineCpu(NamedTuple):
    """How the whole machine's CPU time went over a span, as fractions of it (all cores together)."""

    busy: float  # running anything, this benchmark's processes or not
    stolen: float  # a virtual machine's cores, taken by the host for other guests


def _cpu_ticks() -> list[int] | None:
    """The kernel's counters for all cores (user nice system idle iowait irq softirq steal), None off Linux."""
    try:
        with open("/proc/stat") as stat:
            return [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


class MachineCpuSpan:
    """The whole machine's CPU from now until `end()`.

    The goals are for an idle machine with its cores to itself: a run that read late can then say
    whether the platform's processes had the machine (busy near 100 % is a saturated machine, not a
    slow code path) and whether the host took part of it away (steal).
    """

    def __init__(self) -> None:
        self._before = _cpu_ticks()

    def end(self) -> MachineCpu | None:
        """What the span measured; None off Linux."""
        return _machine_cpu(self._before, _cpu_ticks())


def _machine_cpu(before: list[int] | None, after: list[int] | None) -> MachineCpu | None:
    if not (before and after):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (
        later - earlier for earlier, later in zip(before, after, strict=True)
    )
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return MachineCpu((user + nice + system + irq + softirq) / total, steal / total) if total else None


class MachineCpuTimeline:
    """The machine's CPU counters read every `interval` while `run()` runs, so that a span known only
    afterwards (e.g. while every stream was running) can say how busy the machine was."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._readings: list[tuple[float, list[int] | None]] = []

    def read(self) -> float:
        """Read the counters now (a span's bounds are read this way); returns when, as perf_counter."""
        taken = time.perf_counter()
        self._readings.append((taken, _cpu_ticks()))
        return taken

    async def run(self) -> None:
        """Read every `interval` until canceled."""
        while True:
            self.read()
            await asyncio.sleep(self.interval)

    def between(self, start: float, end: float) -> MachineCpu | None:
        """The machine's CPU from the last reading at or before `start` to the first at or after `end`
        (both perf_counter times); None off Linux or outside the readings."""
        before = [ticks for taken, ticks in self._readings if taken <= start]
        after = [ticks for taken, ticks in self._readings if taken >= end]
        return _machine_cpu(before[-1], after[0]) if before and after else None


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
        "n": len(values),
    }


def report(name: str, rows: list[dict], extra: dict | None = None) -> None:
    """Print rows (metric, measured, baseline, ratio or note, goal, ok) and save them as JSON."""
    print(f"\n== {name}")
    header = f"{'metric':<48} {'measured':>14} {'baseline':>14} {'ratio':>8}  {'goal':<22} ok"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row.get("ratio")
        print(
            f"{row['metric']:<48} {row['measured']:>14} {row.get('baseline', ''):>14} "
            f"{'' if ratio is None else f'{ratio:.2f}':>8}  {row.get('goal', ''):<22} "
            f"{'' if row.get('ok') is None else ('yes' if row['ok'] else 'NO')}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"name": name, "rows": rows, **(extra or {})}, indent=2, default=str))
    print(f"(saved {path.relative_to(ROOT)})")
