"""/metrics' job totals: sealed sums of the past, plus the jobs since.

Counting every job ever at each scrape made a scrape cost more as the history
grew (200,000 jobs: about 260 ms on PostgreSQL, all of it repeated at every
scrape). But a job's creation never changes, nor does a job once it has
ended: a periodic task folds the jobs created and ended before a point in time
into one row (JobTotalsSeal), and a scrape adds only the jobs since, found by
index.

The point in time trails the clock by SEAL_LAG: a job's `finished_at` is set
moments before its transaction commits, so a job that ended before the seal is
always committed by the time the seal reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from inference.models import TERMINAL_STATUSES, Job
from ops import stats
from ops.models import JobTotalsSeal

SEAL_LAG = timedelta(minutes=5)


@dataclass(frozen=True)
class JobTotals:
    created: dict[str, int]  # jobs created, by model
    ended: list[dict[str, Any]]  # jobs that ended, by model and status: rows as stats.job_totals makes them


def job_totals_current(*, latency_bounds: tuple[float, ...]) -> JobTotals:
    """Every job ever: the sealed totals plus the jobs created or ended since the seal."""
    seal = JobTotalsSeal.objects.first()
    if seal is None or seal.sealed_until is None or seal.latency_bounds != _bounds_json(latency_bounds):
        return _totals_between(None, None, latency_bounds)  # nothing sealed with these buckets: count it all
    since = _totals_between(seal.sealed_until, None, latency_bounds)
    return _sum(JobTotals(created=seal.created, ended=seal.ended), since, latency_bounds)


def seal_job_totals(*, latency_bounds: tuple[float, ...], now: datetime | None = None) -> datetime:
    """Fold the jobs created or ended before `now` - SEAL_LAG into the seal; returns how far it reaches.

    Concurrent calls take turns on the seal's row lock, so none counts a job twice. A change of
    buckets seals again from the start.
    """
    until = (now or timezone.now()) - SEAL_LAG
    bounds = _bounds_json(latency_bounds)
    with transaction.atomic():
        seal, _ = JobTotalsSeal.objects.select_for_update().get_or_create(pk=1)
        if seal.latency_bounds != bounds:
            seal.sealed_until, seal.latency_bounds, seal.created, seal.ended = None, bounds, {}, []
        if seal.sealed_until is not None and until <= seal.sealed_until:
            return seal.sealed_until
        sealed = JobTotals(created=seal.created, ended=seal.ended)
        folded = _sum(sealed, _totals_between(seal.sealed_until, until, latency_bounds), latency_bounds)
        seal.sealed_until, seal.created, seal.ended = until, folded.created, folded.ended
        seal.save()
    return until


def _totals_between(since: datetime | None, until: datetime | None, latency_bounds: tuple[float, ...]) -> JobTotals:
    created, ended = Job.objects.all(), Job.objects.filter(status__in=TERMINAL_STATUSES)
    if since is not None:
        created, ended = created.filter(created_at__gte=since), ended.filter(finished_at__gte=since)
    if until is not None:
        created, ended = created.filter(created_at__lt=until), ended.filter(finished_at__lt=until)
    return JobTotals(
        created=stats.jobs_created_by_model(created),
        ended=stats.job_totals(jobs=ended, latency_bounds=latency_bounds),
    )


def _sum(first: JobTotals, second: JobTotals, latency_bounds: tuple[float, ...]) -> JobTotals:
    created = dict(first.created)
    for model, count in second.created.items():
        created[model] = created.get(model, 0) + count
    ended: dict[tuple[str, str], dict[str, Any]] = {}
    for row in [*first.ended, *second.ended]:
        key = (row["model__slug"], row["status"])
        if key not in ended:
            ended[key] = {**row, **{f"{name}_le": list(row[f"{name}_le"]) for name in _latencies(latency_bounds)}}
            continue
        total = ended[key]
        for figure in ("n", "prompt", "completion"):
            total[figure] = (total[figure] or 0) + (row[figure] or 0)
        for name in _latencies(latency_bounds):
            total[f"{name}_count"] += row[f"{name}_count"]
            total[f"{name}_sum"] += row[f"{name}_sum"]
            total[f"{name}_le"] = [a + b for a, b in zip(total[f"{name}_le"], row[f"{name}_le"], strict=True)]
    return JobTotals(created=created, ended=sorted(ended.values(), key=lambda row: (row["model__slug"], row["status"])))


def _latencies(latency_bounds: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(stats.LATENCIES) if latency_bounds else ()


def _bounds_json(latency_bounds: tuple[float, ...]) -> list[float | str]:
    return ["+Inf" if math.isinf(bound) else bound for bound in latency_bounds]
