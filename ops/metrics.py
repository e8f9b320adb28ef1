"""/metrics: a Prometheus collector that reads the database and Redis at scrape time.

Nothing is counted in process memory, so every web process answers the same
and a restart loses nothing. Counters and histograms are totals over every
job ever stored: a job is counted when it is created, and its status, tokens
and latencies when it ends, so they only ever grow, as rate() and
histogram_quantile() expect. The past comes sealed in one row, and a scrape
reads only the jobs since (ops/job_totals.py), so its cost does not grow with
the history.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from ops import stats
from ops.job_totals import job_totals_current
from ops.websockets import websockets_open

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, float("inf"))


def _histogram(name: str, documentation: str, rows: list[dict], key: str) -> HistogramMetricFamily:
    counts = [sum(row[f"{key}_le"][index] for row in rows) for index in range(len(LATENCY_BUCKETS))]
    buckets = [(_le(bound), count) for bound, count in zip(LATENCY_BUCKETS, counts, strict=True)]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(row[f"{key}_sum"] for row in rows))


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class DjinnCollector:
    """Jobs, tokens, latencies, queues and workers, as Prometheus sees them."""

    def collect(self) -> Iterator:
        # Counters only for what never changes back: jobs created, and jobs that ended, by how they ended.
        # Queued and running jobs are states, reported as the djinn_jobs_active gauge below.
        created = CounterMetricFamily("djinn_jobs_created", "Jobs created, by model.", labels=["model"])
        jobs = CounterMetricFamily("djinn_jobs", "Jobs that ended, by model and status.", labels=["model", "status"])
        tokens = CounterMetricFamily(
            "djinn_tokens", "Tokens of the jobs that ended, by model.", labels=["model", "kind"]
        )
        totals = job_totals_current(latency_bounds=LATENCY_BUCKETS)
        per_model = {model: {"prompt": 0, "completion": 0} for model in totals.created}
        for row in totals.ended:
            figures = per_model.setdefault(row["model__slug"], {"prompt": 0, "completion": 0})
            figures["prompt"] += row["prompt"] or 0
            figures["completion"] += row["completion"] or 0
            jobs.add_metric([row["model__slug"], row["status"]], row["n"])
        for model, figures in sorted(per_model.items()):
            created.add_metric([model], totals.created.get(model, 0))
            tokens.add_metric([model, "prompt"], figures["prompt"])
            tokens.add_metric([model, "completion"], figures["completion"])
        yield created
        yield jobs
        yield tokens

        yield _histogram(
            "djinn_job_queue_wait_seconds",
            "From creation to start, observed when the job ends.",
            totals.ended,
            "queue_wait",
        )
        yield _histogram(
            "djinn_job_time_to_first_token_seconds",
            "From start to the first token, observed when the job ends.",
            totals.ended,
            "ttft",
        )
        yield _histogram(
            "djinn_job_duration_seconds",
            "From creation to the end, observed when the job ends.",
            totals.ended,
            "duration",
        )

        workers = stats.workers_or_empty()
        queues = stats.known_queues(workers)
        active = stats.active_jobs_by_queue()
        depth = GaugeMetricFamily("djinn_queue_depth", "Messages waiting in the Celery queue.", labels=["queue"])
        for queue, length in stats.queue_depths(queues).items():
            if length is not None:
                depth.add_metric([queue], length)
        yield depth
        in_state = GaugeMetricFamily(
            "djinn_jobs_active", "Jobs queued or running now, by queue.", labels=["queue", "status"]
        )
        for queue in queues:
            for status in ("queued", "running"):
                in_state.add_metric([queue, status], active.get(queue, {}).get(status, 0))
        yield in_state
        online = GaugeMetricFamily("djinn_workers_online", "Celery workers that reported in recently.")
        online.add_metric([], len(workers))
        yield online
        try:
            sockets = websockets_open()
        except Exception:  # Redis gone: the metric is missing rather than wrong
            sockets = None
        if sockets is not None:
            open_sockets = GaugeMetricFamily("djinn_websockets_open", "Open websockets over all daphne processes.")
            open_sockets.add_metric([], sockets)
            yield open_sockets
        per_queue = GaugeMetricFamily("djinn_queue_workers", "Workers consuming each queue.", labels=["queue"])
        for queue in queues:
            per_queue.add_metric([queue], sum(1 for w in workers if queue in w.get("queues", [])))
        yield per_queue


def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DjinnCollector())
    return registry
