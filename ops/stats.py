"""What the platform is doing, read from the database and Redis at the moment of asking.

The ops dashboard and /metrics both read here. Latencies are computed in
Python from the jobs of a recent window (bounded), so they work on SQLite
under `make run` as well as on PostgreSQL.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.utils import timezone

from inference import streams
from inference.models import AIModel, Job, JobStatus
from inference.workers import ProcessRecord, worker_processes, workers_online

WINDOW = timedelta(hours=1)
# The most recent jobs a window's latencies are computed from; enough for stable percentiles.
MAX_JOBS_IN_WINDOW = 20_000
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def celery_queue_key(queue: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:celery:{queue}"


def known_queues(workers: list[dict] | None = None) -> list[str]:
    """Every queue a model routes to or a worker consumes, plus `default`."""
    queues = {"default", *AIModel.objects.values_list("queue", flat=True).distinct()}
    for worker in workers or []:
        queues.update(worker.get("queues", []))
    return sorted(queues)


def queue_depths(queues: list[str]) -> dict[str, int | None]:
    """Messages waiting in each Celery queue in Redis (None when Redis does not answer)."""
    try:
        client = streams.redis_client()
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(celery_queue_key(queue))
        return dict(zip(queues, pipe.execute(), strict=True))
    except Exception:
        return dict.fromkeys(queues)


def workers_or_empty() -> list[dict]:
    try:
        return workers_online()
    except Exception:
        return []


def worker_processes_or_empty() -> list[ProcessRecord]:
    try:
        return worker_processes()
    except Exception:
        return []


def models_loading(worker: dict, processes: list[ProcessRecord]) -> list[str]:
    """The models a worker's processes are still loading (none once it is ready)."""
    return sorted(
        {
            slug
            for process in processes
            if (process.host, process.worker_pid) == (worker.get("host"), worker.get("pid")) and not process.loaded
            for slug in process.models
        }
    )


def active_jobs_by_queue() -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"queued": 0, "running": 0})
    rows = Job.objects.filter(status__in=ACTIVE).values("model__queue", "status").annotate(n=Count("id"))
    for row in rows:
        counts[row["model__queue"]][row["status"]] = row["n"]
    return dict(counts)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def recent_jobs(now: datetime, window: timedelta = WINDOW) -> list[dict[str, Any]]:
    """Jobs created or finished within the window, newest first, with their timings in seconds."""
    since = now - window
    # A job lives at most its queue timeout plus a time limit per attempt: this bound keeps the scan on the index.
    lifetime = settings.JOB_QUEUE_TIMEOUT_SECONDS + settings.JOB_MAX_ATTEMPTS * settings.JOB_TIME_LIMIT_SECONDS
    oldest = since - timedelta(seconds=lifetime)
    rows = (
        Job.objects.filter(created_at__gte=oldest)
        .filter(Q(created_at__gte=since) | Q(finished_at__gte=since))
        .order_by("-created_at")
        .values(
            "status",
            "error_code",
            "owner__username",
            "model__slug",
            "prompt_tokens",
            "completion_tokens",
            "created_at",
            "started_at",
            "first_token_at",
            "finished_at",
        )[:MAX_JOBS_IN_WINDOW]
    )
    jobs = []
    for row in rows:
        row["queue_wait"] = _seconds(row["started_at"], row["created_at"])
        row["ttft"] = _seconds(row["first_token_at"], row["started_at"])
        row["total"] = _seconds(row["finished_at"], row["created_at"])
        jobs.append(row)
    return jobs


def _percentiles(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} | {"count": len(values)}


def dashboard(*, now: datetime | None = None) -> dict[str, Any]:
    """Every figure the ops dashboard shows, as JSON-ready data."""
    now = now or timezone.now()
    workers = workers_or_empty()
    processes = worker_processes_or_empty()
    queues = known_queues(workers)
    depths = queue_depths(queues)
    active = active_jobs_by_queue()
    models_by_queue: dict[str, list[str]] = defaultdict(list)
    for slug, queue in AIModel.objects.filter(enabled=True).values_list("slug", "queue"):
        models_by_queue[queue].append(slug)

    jobs = recent_jobs(now)
    since = now - WINDOW
    finished = [j for j in jobs if j["finished_at"] is not None and j["finished_at"] >= since]
    last_minute = [j for j in finished if j["finished_at"] >= now - timedelta(minutes=1)]
    # An error is a failed or expired job; canceled ones were asked to stop.
    erred = [j for j in finished if j["status"] in (JobStatus.FAILED, JobStatus.EXPIRED)]
    errors = Counter(j["error_code"] or j["status"] for j in erred)

    users: dict[str, dict[str, int]] = defaultdict(lambda: {"jobs": 0, "tokens": 0})
    models: dict[str, dict[str, int]] = defaultdict(lambda: {"jobs": 0, "tokens": 0})
    for j in jobs:
        if j["created_at"] < since:
            continue
        tokens = j["prompt_tokens"] + j["completion_tokens"]
        for bucket, key in ((users, j["owner__username"]), (models, j["model__slug"])):
            bucket[key]["jobs"] += 1
            bucket[key]["tokens"] += tokens

    series = [
        {"minute": (since + timedelta(minutes=m)).isoformat(), "jobs": 0, "tokens": 0, "errors": 0} for m in range(60)
    ]
    for j in finished:
        index = min(59, int((j["finished_at"] - since).total_seconds() // 60))
        series[index]["jobs"] += 1
        series[index]["tokens"] += j["completion_tokens"]
        series[index]["errors"] += j["status"] in (JobStatus.FAILED, JobStatus.EXPIRED)

    def top(bucket: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
        ranked = sorted(bucket.items(), key=lambda item: (-item[1]["jobs"], -item[1]["tokens"], item[0]))
        return [{"name": name, **figures} for name, figures in ranked[:10]]

    return {
        "generated_at": now.isoformat(),
        "window_seconds": int(WINDOW.total_seconds()),
        "queues": [
            {
                "name": queue,
                "queued": active.get(queue, {}).get("queued", 0),
                "running": active.get(queue, {}).get("running", 0),
                "broker_depth": depths.get(queue),
                "workers": sum(1 for w in workers if queue in w.get("queues", [])),
            }
            for queue in queues
        ],
        "workers": [
            {
                "hostname": w.get("hostname"),
                "queues": w.get("queues", []),
                "models": sorted({slug for q in w.get("queues", []) for slug in models_by_queue.get(q, [])}),
                "loading": models_loading(w, processes),
            }
            for w in workers
        ],
        "throughput": {
            "jobs_last_minute": len(last_minute),
            "jobs_per_minute_last_hour": round(len(finished) / 60, 3),
            "tokens_per_second_last_minute": round(sum(j["completion_tokens"] for j in last_minute) / 60, 3),
        },
        "latency": {
            "queue_wait": _percentiles(
                [j["queue_wait"] for j in jobs if j["queue_wait"] is not None and j["created_at"] >= since]
            ),
            "ttft": _percentiles([j["ttft"] for j in finished if j["ttft"] is not None]),
            "total": _percentiles([j["total"] for j in finished if j["total"] is not None]),
        },
        "errors": {
            "finished": len(finished),
            "errors": len(erred),
            "rate": round(len(erred) / len(finished), 4) if finished else 0.0,
            "by_code": dict(sorted(errors.items(), key=lambda item: (-item[1], item[0]))),
        },
        "top_users": top(users),
        "top_models": top(models),
        "series": series,
    }


# Every open dashboard polls every 2 s; the figures are shared through Redis for that long, so N tabs over
# M processes cost one computation per 2 s, not N. While one process recomputes, others serve the last figures.
DASHBOARD_FRESH_MS = 2000
DASHBOARD_STALE_MS = 60_000
DASHBOARD_LOCK_MS = 10_000


def dashboard_cache_keys() -> tuple[str, str, str]:
    prefix = f"{settings.REDIS_KEY_PREFIX}:ops:dashboard"
    return f"{prefix}:fresh", f"{prefix}:last", f"{prefix}:computing"


def dashboard_shared() -> dict[str, Any]:
    """`dashboard()`, computed at most once per 2 s over every process and tab; computed directly without Redis."""
    fresh_key, last_key, lock_key = dashboard_cache_keys()
    try:
        client = streams.redis_client()
        cached = client.get(fresh_key)
        if cached is None and not client.set(lock_key, "1", nx=True, px=DASHBOARD_LOCK_MS):
            cached = client.get(last_key)  # someone else is computing: their previous figures will do
    except Exception:
        return dashboard()
    if cached is not None:
        return json.loads(cached)
    figures = dashboard()
    try:
        encoded = json.dumps(figures)
        pipe = client.pipeline(transaction=False)
        pipe.set(fresh_key, encoded, px=DASHBOARD_FRESH_MS)
        pipe.set(last_key, encoded, px=DASHBOARD_STALE_MS)
        pipe.delete(lock_key)
        pipe.execute()
    except Exception:
        pass  # Redis went away meanwhile: the next poll computes again
    return figures


# The latencies /metrics keeps as histograms: each is observed once, when its job ends, and never changes after.
LATENCIES = {
    "queue_wait": ("started_at", "created_at"),
    "ttft": ("first_token_at", "started_at"),
    "duration": ("finished_at", "created_at"),
}


def job_totals(*, jobs: QuerySet[Job] | None = None, latency_bounds: tuple[float, ...] = ()) -> list[dict[str, Any]]:
    """Jobs and tokens by model and status (of `jobs`, or over all time), for /metrics' counters and histograms.

    With `latency_bounds`, each row also counts its finished jobs' latencies
    into cumulative buckets (`<name>_le` lists, one count per bound, then
    `<name>_count` and `<name>_sum` in seconds), in the same single pass: a
    finished job never changes, so every figure only grows.
    """
    finished = Q(finished_at__isnull=False)
    aliases, aggregates = {}, {}
    for name, (later, earlier) in LATENCIES.items():
        aliases[f"_{name}"] = ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())
        if not latency_bounds:
            continue
        observed = finished & Q(**{f"{later}__isnull": False, f"{earlier}__isnull": False})
        aggregates[f"{name}_count"] = Count("id", filter=observed)
        aggregates[f"{name}_sum"] = Sum(f"_{name}", filter=observed)
        for index, bound in enumerate(latency_bounds):
            if not math.isinf(bound):
                lte = {f"_{name}__lte": timedelta(seconds=bound)}
                aggregates[f"{name}_le_{index}"] = Count("id", filter=observed & Q(**lte))
    rows = list(
        (Job.objects.all() if jobs is None else jobs)
        .alias(**aliases)
        .values("model__slug", "status")
        .annotate(n=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), **aggregates)
        .order_by()
    )
    for row in rows:
        for name in LATENCIES if latency_bounds else ():
            total = row.pop(f"{name}_sum")
            row[f"{name}_sum"] = total.total_seconds() if total is not None else 0.0
            row[f"{name}_le"] = [
                row[f"{name}_count"] if math.isinf(bound) else row.pop(f"{name}_le_{index}")
                for index, bound in enumerate(latency_bounds)
            ]
    return rows


def jobs_created_by_model(jobs: QuerySet[Job]) -> dict[str, int]:
    """How many of `jobs` each model has."""
    rows = jobs.values("model__slug").annotate(n=Count("id")).order_by()
    return {row["model__slug"]: row["n"] for row in rows}
