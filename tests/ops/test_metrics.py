"""/metrics: Prometheus text for a scraper with the token or a staff session, nothing for anyone else."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from tests.ops.scraping import TOKEN, scrape
from tests.support.processes import wait_for


def _jobs(samples: dict, model: str, status: str) -> float:
    return samples.get(("djinn_jobs_total", (("model", model), ("status", status))), 0)


@pytest.mark.django_db
def test_metrics_parse_as_prometheus_text_with_the_token(client, metrics_token, owner, echo_model):
    job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})
    done = job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "bye"}]})
    Job.objects.filter(id=done.id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert samples[("djinn_jobs_created_total", (("model", "echo"),))] == 2
    # Only jobs that ended are counted by status; the queued one is a state, reported by djinn_jobs_active.
    ended = {labels for name, labels in samples if name == "djinn_jobs_total"}
    assert ended == {(("model", "echo"), ("status", "succeeded"))}
    assert _jobs(samples, "echo", "succeeded") == 1
    assert samples[("djinn_jobs_active", (("queue", "default"), ("status", "queued")))] == 1
    assert ("djinn_queue_depth", (("queue", "default"),)) in samples
    assert ("djinn_workers_online", ()) in samples
    for name in ("queue_wait", "time_to_first_token", "duration"):
        assert (f"djinn_job_{name}_seconds_bucket", (("le", "+Inf"),)) in samples


def _finished_job(user, model, *, created, started=None, first_token=None, finished):
    job = job_submit(user=user, model=model, input={"messages": [{"role": "user", "content": "timed"}]})
    at = lambda seconds: None if seconds is None else created + timedelta(seconds=seconds)  # noqa: E731
    Job.objects.filter(id=job.id).update(
        created_at=created,
        status=JobStatus.SUCCEEDED if started is not None else JobStatus.CANCELED,
        started_at=at(started),
        first_token_at=at(first_token),
        finished_at=at(finished),
    )
    return job


def _bucket(samples: dict, name: str, le: str) -> float:
    return samples[(f"djinn_job_{name}_seconds_bucket", (("le", le),))]


@pytest.mark.django_db
def test_histograms_count_every_finished_job_ever_in_cumulative_buckets(client, metrics_token, owner, echo_model):
    now = timezone.now()
    _finished_job(owner, echo_model, created=now - timedelta(days=3), started=0.2, first_token=0.3, finished=4)
    _finished_job(owner, echo_model, created=now - timedelta(hours=2), started=2, first_token=3, finished=40)
    _finished_job(owner, echo_model, created=now - timedelta(minutes=1), finished=0.04)  # canceled while queued
    job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "not ended yet"}]})

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    # Jobs from days ago still count: the histograms never shrink as time passes.
    assert samples[("djinn_job_queue_wait_seconds_count", ())] == 2
    assert _bucket(samples, "queue_wait", "0.25") == 1
    assert _bucket(samples, "queue_wait", "2.5") == 2
    assert samples[("djinn_job_queue_wait_seconds_sum", ())] == pytest.approx(2.2)
    assert samples[("djinn_job_time_to_first_token_seconds_count", ())] == 2
    assert _bucket(samples, "time_to_first_token", "0.1") == 1
    assert _bucket(samples, "time_to_first_token", "1.0") == 2
    assert samples[("djinn_job_duration_seconds_count", ())] == 3
    assert _bucket(samples, "duration", "0.05") == 1
    assert _bucket(samples, "duration", "5.0") == 2
    assert _bucket(samples, "duration", "30.0") == 2
    assert _bucket(samples, "duration", "60.0") == 3
    assert _bucket(samples, "duration", "+Inf") == 3
    assert samples[("djinn_job_duration_seconds_sum", ())] == pytest.approx(44.04)


@pytest.mark.django_db
def test_a_staff_session_may_read_metrics(admin_client):
    scrape(admin_client)


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_anyone_else_gets_a_404(client, metrics_token, owner, authorization):
    client.force_login(owner)
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    assert client.get("/metrics", **headers).status_code == 404


@pytest.mark.django_db
def test_an_empty_token_setting_opens_nothing(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_counters_move_when_a_real_worker_runs_jobs(client, metrics_token, celery_worker, owner, echo_model):
    before = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    jobs = [
        job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": f"count {n}"}]})
        for n in range(3)
    ]
    wait_for(lambda: all(Job.objects.get(id=job.id).is_finished for job in jobs), timeout=30, what="jobs to finish")

    after = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert _jobs(after, "echo", "succeeded") - _jobs(before, "echo", "succeeded") == 3
    created = ("djinn_jobs_created_total", (("model", "echo"),))
    assert after[created] - before.get(created, 0) == 3
    completion = ("djinn_tokens_total", (("kind", "completion"), ("model", "echo")))
    assert after[completion] - before.get(completion, 0) == 6
    assert after[("djinn_workers_online", ())] >= 1
    duration = ("djinn_job_duration_seconds_count", ())
    assert after[duration] - before.get(duration, 0) == 3
    for le in ("0.05", "1.0", "+Inf"):  # cumulative: no bucket ever goes down
        bucket = ("djinn_job_duration_seconds_bucket", (("le", le),))
        assert after[bucket] >= before.get(bucket, 0)
