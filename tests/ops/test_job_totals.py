"""/metrics' sealed job totals: sealed past plus live present always equals counting every job."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from ops.job_totals import SEAL_LAG, job_totals_current, seal_job_totals
from ops.metrics import LATENCY_BUCKETS
from ops.models import JobTotalsSeal
from ops.tasks import seal_metrics_job_totals
from tests.ops.scraping import scrape

ENDINGS = [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED]


@pytest.fixture
def models(db):
    # On a queue no worker reads: the history below is written by hand, and a worker must not run it meanwhile.
    return [
        AIModel.objects.create(
            slug=slug, display_name=slug, task="chat", backend="echo", max_output_tokens=500, queue="nobody"
        )
        for slug in ("echo", "other")
    ]


def _history(owner, models, now, count=60, seed=7):
    """Jobs created over the last ten days; most ended a few seconds to hours later, some are still going."""
    rng = random.Random(seed)
    for _ in range(count):
        job = job_submit(user=owner, model=rng.choice(models), input={"messages": [{"role": "user", "content": "hi"}]})
        created = now - timedelta(minutes=rng.uniform(0, 10 * 24 * 60))
        fields = {"created_at": created, "prompt_tokens": rng.randint(1, 50), "completion_tokens": rng.randint(0, 90)}
        if rng.random() < 0.8:
            started = created + timedelta(seconds=rng.uniform(0, 5))
            fields |= {
                "status": rng.choice(ENDINGS),
                "started_at": started,
                "first_token_at": started + timedelta(seconds=rng.uniform(0, 2)),
                "finished_at": min(now, started + timedelta(seconds=rng.uniform(0, 4 * 3600))),
            }
        Job.objects.filter(id=job.id).update(**fields)


def _counted_anew():
    """What the totals must be: every job counted from scratch, with no seal."""
    JobTotalsSeal.objects.all().delete()
    return job_totals_current(latency_bounds=LATENCY_BUCKETS)


def _as_compared(totals):
    rounded = [
        {key: round(value, 6) if isinstance(value, float) else value for key, value in row.items()}
        for row in totals.ended
    ]
    return totals.created, sorted(rounded, key=lambda row: (row["model__slug"], row["status"]))


@pytest.mark.django_db
def test_sealing_step_by_step_never_changes_the_totals(owner, models):
    now = timezone.now()
    _history(owner, models, now)
    expected = _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS))
    assert sum(expected[0].values()) == 60

    for days_ago in (9, 6, 6, 3.5, 1, 0.2, 0):
        seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now - timedelta(days=days_ago))
        assert _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS)) == expected, days_ago

    seal = JobTotalsSeal.objects.get()
    assert seal.sealed_until == now - SEAL_LAG
    assert sum(seal.created.values()) == Job.objects.filter(created_at__lt=seal.sealed_until).count()
    assert _as_compared(_counted_anew()) == expected


@pytest.mark.django_db
def test_a_job_that_ends_after_the_seal_is_counted_live_then_sealed(owner, models):
    now = timezone.now()
    seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now)
    job = job_submit(user=owner, model=models[0], input={"messages": [{"role": "user", "content": "late"}]})
    Job.objects.filter(id=job.id).update(
        status=JobStatus.SUCCEEDED, started_at=now, first_token_at=now, finished_at=now, completion_tokens=5
    )

    live = job_totals_current(latency_bounds=LATENCY_BUCKETS)
    seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now + SEAL_LAG + timedelta(seconds=1))
    sealed = job_totals_current(latency_bounds=LATENCY_BUCKETS)

    assert JobTotalsSeal.objects.get().ended  # the job is in the seal now, not read from the jobs table
    for totals in (live, sealed):
        assert totals.created == {"echo": 1}
        [row] = totals.ended
        assert (row["model__slug"], row["status"], row["n"], row["completion"]) == ("echo", "succeeded", 1, 5)


@pytest.mark.django_db
def test_new_buckets_seal_again_from_the_start(owner, models):
    now = timezone.now()
    _history(owner, models, now, count=25)
    seal_job_totals(latency_bounds=(1.0, 60.0, float("inf")), now=now - timedelta(days=2))

    seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now)

    assert JobTotalsSeal.objects.get().latency_bounds[-1] == "+Inf"
    assert _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS)) == _as_compared(_counted_anew())


@pytest.mark.django_db(transaction=True)
def test_sealers_running_at_once_count_each_job_once(owner, models):
    now = timezone.now()
    _history(owner, models, now, count=30)
    expected = _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS))
    start = threading.Barrier(4)

    def seal():
        try:
            start.wait()
            seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now)
        finally:
            connection.close()

    sealers = [threading.Thread(target=seal) for _ in range(4)]
    for sealer in sealers:
        sealer.start()
    for sealer in sealers:
        sealer.join()

    assert JobTotalsSeal.objects.count() == 1
    assert JobTotalsSeal.objects.get().sealed_until == now - SEAL_LAG
    assert _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS)) == expected


@pytest.mark.django_db
def test_a_scrape_reads_the_same_figures_before_and_after_a_seal(client, metrics_token, owner, models):
    now = timezone.now()
    _history(owner, models, now, count=40)
    before = scrape(client, HTTP_AUTHORIZATION=f"Bearer {metrics_token}")

    seal_job_totals(latency_bounds=LATENCY_BUCKETS, now=now)
    after = scrape(client, HTTP_AUTHORIZATION=f"Bearer {metrics_token}")

    job_figures = lambda samples: {  # noqa: E731
        key: round(value, 6) for key, value in samples.items() if key[0].startswith(("djinn_job", "djinn_tokens"))
    }
    assert job_figures(after) == job_figures(before)
    assert before[("djinn_jobs_created_total", (("model", "echo"),))] > 0


@pytest.mark.django_db
def test_beat_seals_the_totals_with_the_buckets_metrics_uses(owner, models, settings):
    _history(owner, models, timezone.now(), count=10)
    entry = next(
        entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == seal_metrics_job_totals.name
    )

    seal_metrics_job_totals()

    assert entry["schedule"] == settings.JOB_TOTALS_SEAL_INTERVAL_SECONDS
    seal = JobTotalsSeal.objects.get()
    assert seal.latency_bounds == [*LATENCY_BUCKETS[:-1], "+Inf"]
    assert _as_compared(job_totals_current(latency_bounds=LATENCY_BUCKETS)) == _as_compared(_counted_anew())
