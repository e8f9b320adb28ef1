"""The ops dashboard: staff see live figures that match the jobs in the database; nobody else sees anything."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from inference.streams import redis_client
from ops.stats import DASHBOARD_FRESH_MS, dashboard, dashboard_cache_keys
from tests.ops.loading import LOAD_SECONDS, loading_on, slow_model_on_a_queue_of_its_own
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db


def _job(user, model, *, created, status, started=None, first_token=None, finished=None, tokens=(0, 0), code=""):
    job = job_submit(user=user, model=model, input={"messages": [{"role": "user", "content": "hi"}]})
    at = lambda seconds: None if seconds is None else created + timedelta(seconds=seconds)  # noqa: E731
    Job.objects.filter(id=job.id).update(
        created_at=created,
        status=status,
        started_at=at(started),
        first_token_at=at(first_token),
        finished_at=at(finished),
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        error_code=code,
    )
    return job


@pytest.fixture
def known_jobs(owner, outsider, echo_model):
    now = timezone.now()
    _job(owner, echo_model, created=now - timedelta(minutes=10), status=JobStatus.SUCCEEDED,
         started=1, first_token=1.5, finished=3, tokens=(4, 6))  # fmt: skip
    _job(owner, echo_model, created=now - timedelta(minutes=20), status=JobStatus.SUCCEEDED,
         started=3, first_token=3.5, finished=5, tokens=(2, 10))  # fmt: skip
    _job(outsider, echo_model, created=now - timedelta(seconds=30), status=JobStatus.FAILED,
         started=2, finished=10, code="backend_error")  # fmt: skip
    _job(outsider, echo_model, created=now, status=JobStatus.QUEUED)
    # Outside the hour: counted nowhere.
    _job(owner, echo_model, created=now - timedelta(hours=2), status=JobStatus.SUCCEEDED,
         started=100, first_token=200, finished=300, tokens=(50, 50))  # fmt: skip


def test_the_dashboard_figures_match_a_known_set_of_jobs(admin_client, known_jobs):
    stats = admin_client.get("/ops/stats.json").json()

    default = next(queue for queue in stats["queues"] if queue["name"] == "default")
    assert (default["queued"], default["running"]) == (1, 0)
    assert stats["throughput"] == {
        "jobs_last_minute": 1,
        "jobs_per_minute_last_hour": 0.05,
        "tokens_per_second_last_minute": 0.0,
    }
    latency = stats["latency"]
    assert latency["queue_wait"] == {"p50": 2.0, "p90": pytest.approx(2.8), "p99": pytest.approx(2.98), "count": 3}
    assert latency["ttft"] == {"p50": 0.5, "p90": 0.5, "p99": 0.5, "count": 2}
    assert (latency["total"]["p50"], latency["total"]["count"]) == (5.0, 3)
    assert stats["errors"] == {"finished": 3, "errors": 1, "rate": 0.3333, "by_code": {"backend_error": 1}}
    assert stats["top_users"] == [
        {"name": "owner", "jobs": 2, "tokens": 22},
        {"name": "outsider", "jobs": 2, "tokens": 0},
    ]
    assert stats["top_models"] == [{"name": "echo", "jobs": 4, "tokens": 22}]
    assert len(stats["series"]) == 60
    assert sum(point["jobs"] for point in stats["series"]) == 3
    assert sum(point["tokens"] for point in stats["series"]) == 16
    assert sum(point["errors"] for point in stats["series"]) == 1


def test_tabs_polling_within_two_seconds_share_one_computation(admin_client, owner, echo_model):
    first = admin_client.get("/ops/stats.json").json()
    job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "new"}]})

    again = admin_client.get("/ops/stats.json").json()

    assert again == first  # served from Redis: the new job is not counted yet
    time.sleep(DASHBOARD_FRESH_MS / 1000 + 0.1)
    later = admin_client.get("/ops/stats.json").json()
    assert later["generated_at"] > first["generated_at"]
    assert later["top_models"] == [{"name": "echo", "jobs": 1, "tokens": 0}]


def test_while_another_process_computes_the_last_figures_are_served(admin_client, owner, echo_model):
    first = admin_client.get("/ops/stats.json").json()
    fresh_key, _, lock_key = dashboard_cache_keys()
    redis_client().delete(fresh_key)
    redis_client().set(lock_key, "1", px=5000)  # another process is computing right now
    job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "new"}]})

    assert admin_client.get("/ops/stats.json").json() == first


def test_the_dashboard_page_polls_its_json_with_a_local_script(admin_client):
    page = admin_client.get("/ops/").content.decode()

    assert 'data-stats-url="/ops/stats.json"' in page
    assert 'src="/static/ops/dashboard.js"' in page
    assert "https://" not in page  # no CDN


def test_a_non_staff_user_gets_nothing_from_the_dashboard(client, owner):
    client.force_login(owner)

    assert client.get("/ops/").status_code == 404
    assert client.get("/ops/stats.json").status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/ops/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/ops/")
    assert client.get("/ops/stats.json").status_code == 404


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_loading_its_models_says_so_until_it_is_ready(start_worker):
    model = slow_model_on_a_queue_of_its_own()
    worker = start_worker(model.queue)
    wait_for(lambda: loading_on(model.queue), timeout=LOAD_SECONDS, what="the worker to start loading")

    def listed():
        return next((w for w in dashboard()["workers"] if w["hostname"] == worker.name), None)

    loading = wait_for(listed, timeout=LOAD_SECONDS, what="the worker to announce itself")
    assert (loading["models"], loading["loading"]) == ([model.slug], [model.slug])
    wait_for(lambda: listed()["loading"] == [], timeout=LOAD_SECONDS + 30, what="the model to load")
    assert f"warmed {model.slug}" in worker.log()
