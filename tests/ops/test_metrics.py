"""/metrics: Prometheus text for a scraper with the token or a staff session, nothing for anyone else."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inference.models import Job
from inference.services.jobs import job_submit
from tests.support.processes import wait_for

TOKEN = "scrape-me-1234"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _jobs(samples: dict, model: str, status: str) -> float:
    return samples.get(("djinn_jobs_total", (("model", model), ("status", status))), 0)


@pytest.mark.django_db
def test_metrics_parse_as_prometheus_text_with_the_token(client, metrics_token, owner, echo_model):
    job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})

    samples = _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert samples[("djinn_jobs_created_total", (("model", "echo"),))] == 1
    assert _jobs(samples, "echo", "queued") == 0  # a state, not a count of events: see djinn_jobs_active
    assert samples[("djinn_jobs_active", (("queue", "default"), ("status", "queued")))] == 1
    assert ("djinn_queue_depth", (("queue", "default"),)) in samples
    assert ("djinn_workers_online", ()) in samples
    for name in ("queue_wait", "time_to_first_token", "duration"):
        assert (f"djinn_job_{name}_seconds_bucket", (("le", "+Inf"),)) in samples


@pytest.mark.django_db
def test_a_staff_session_may_read_metrics(admin_client):
    _scrape(admin_client)


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
    before = _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    jobs = [
        job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": f"count {n}"}]})
        for n in range(3)
    ]
    wait_for(lambda: all(Job.objects.get(id=job.id).is_finished for job in jobs), timeout=30, what="jobs to finish")

    after = _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert _jobs(after, "echo", "succeeded") - _jobs(before, "echo", "succeeded") == 3
    created = ("djinn_jobs_created_total", (("model", "echo"),))
    assert after[created] - before.get(created, 0) == 3
    completion = ("djinn_tokens_total", (("kind", "completion"), ("model", "echo")))
    assert after[completion] - before.get(completion, 0) == 6
    assert after[("djinn_workers_online", ())] >= 1
    assert after[("djinn_job_duration_seconds_count", ())] >= 3
