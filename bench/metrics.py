"""/metrics benchmark: what a scrape costs as the job history grows, with and without the sealed totals.

Builds a history of finished jobs in a database of its own (20,000 then 200,000
jobs; kept between runs), and times the /metrics collector against it: counting
every job (the baseline, what a scrape does before any seal) and after a seal
(ops/job_totals.py). The goal: a sealed scrape costs the same however long the
history, and far less than counting it all.

    .venv/bin/python bench/metrics.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from harness import bench_env, percentile, report, setup_django

DATABASE = "djinn_bench_metrics"  # not the other benchmarks' database: 200,000 jobs would change their figures


def history(size: int) -> None:
    """Exactly `size` finished jobs, created over the last 30 days (added to what is there, or made anew)."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from inference.models import AIModel, Job, JobStatus

    if Job.objects.count() > size:  # start over: deleting most of a table would leave scans wading through dead rows
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE inference_job CASCADE")
    model, _ = AIModel.objects.get_or_create(
        slug="bench-metrics", defaults={"display_name": "bench", "task": "chat", "backend": "echo", "queue": "nobody"}
    )
    owner, _ = User.objects.get_or_create(username="bench-metrics")
    rng, now = random.Random(size), timezone.now()
    statuses = [JobStatus.SUCCEEDED] * 8 + [JobStatus.FAILED, JobStatus.CANCELED]
    while (missing := size - Job.objects.count()) > 0:
        batch = []
        for _ in range(min(missing, 5000)):
            created = now - timedelta(seconds=rng.uniform(600, 30 * 86400))
            started = created + timedelta(seconds=rng.uniform(0, 2))
            batch.append(
                Job(
                    owner=owner,
                    model=model,
                    task="chat",
                    input={"messages": [{"role": "user", "content": "hi"}]},
                    status=rng.choice(statuses),
                    deadline_at=created + timedelta(hours=1),
                    started_at=started,
                    first_token_at=started + timedelta(seconds=rng.uniform(0, 1)),
                    finished_at=started + timedelta(seconds=rng.uniform(1, 60)),
                    prompt_tokens=rng.randint(5, 500),
                    completion_tokens=rng.randint(1, 500),
                )
            )
        Job.objects.bulk_create(batch)
    with connection.cursor() as cursor:  # created_at is set on insert: put it back before the job started
        cursor.execute(
            "UPDATE inference_job SET created_at = started_at - interval '1 second' WHERE created_at > %s", [now]
        )
        # As autovacuum would, in time: the rewritten rows left dead index entries where no real history has them.
        cursor.execute("VACUUM ANALYZE inference_job")


def scrape_ms(rounds: int) -> list[float]:
    from ops.metrics import DjinnCollector

    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        list(DjinnCollector().collect())
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(size: int, rounds: int) -> dict[str, float]:
    from ops.job_totals import seal_job_totals
    from ops.metrics import LATENCY_BUCKETS
    from ops.models import JobTotalsSeal

    history(size)
    JobTotalsSeal.objects.all().delete()
    counting_all = percentile(scrape_ms(rounds), 50)
    started = time.perf_counter()
    seal_job_totals(latency_bounds=LATENCY_BUCKETS)
    first_seal = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    seal_job_totals(latency_bounds=LATENCY_BUCKETS)  # as beat does next: only what ended since
    next_seal = (time.perf_counter() - started) * 1000
    sealed = percentile(scrape_ms(rounds), 50)
    return {"counting_all": counting_all, "sealed": sealed, "first_seal": first_seal, "next_seal": next_seal}


def main(quick: bool) -> None:
    env = bench_env()
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{DATABASE}"
    setup_django(env)
    small, large = (5_000, 50_000) if quick else (20_000, 200_000)
    rounds = 5 if quick else 15
    figures = {size: measure(size, rounds) for size in (small, large)}
    rows = []
    for size, result in figures.items():
        rows.append(
            {
                "metric": f"scrape with {size:,} jobs, sealed (ms)",
                "measured": f"{result['sealed']:.1f}",
                "baseline": f"{result['counting_all']:.1f}",
                "ratio": result["sealed"] / result["counting_all"],
                "goal": "(reported)" if size == small else "ratio <= 0.2",
                "ok": None if size == small else result["sealed"] / result["counting_all"] <= 0.2,
            }
        )
        rows.append(
            {
                "metric": f"seal with {size:,} jobs: first / next (ms)",
                "measured": f"{result['first_seal']:.0f} / {result['next_seal']:.0f}",
                "goal": "(reported)",
            }
        )
    growth = figures[large]["sealed"] / figures[small]["sealed"]
    rows.append(
        {
            "metric": f"sealed scrape, {large:,} vs {small:,} jobs",
            "measured": f"x{growth:.2f}",
            "baseline": f"x{figures[large]['counting_all'] / figures[small]['counting_all']:.2f}",
            "goal": "x <= 1.5 (flat)",
            "ok": growth <= 1.5,
        }
    )
    report("metrics", rows, {"figures_ms": {str(size): result for size, result in figures.items()}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller histories, fewer rounds")
    args = parser.parse_args()
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    main(args.quick)
