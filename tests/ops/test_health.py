"""/healthz says the process is alive; /readyz says whether every part it needs answers."""

import pytest

from tests.ops.loading import LOAD_SECONDS, loading_on, slow_model_on_a_queue_of_its_own
from tests.support.processes import wait_for

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.worker
def test_readyz_is_ok_when_the_database_redis_and_a_worker_answer(client, celery_worker):
    # A worker just started may still be loading its models (below): ready within seconds.
    response = wait_for(lambda: (answer := client.get("/readyz")).status_code == 200 and answer, what="/readyz")

    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "workers": "ok", "models": "ok"}


def test_readyz_names_redis_when_redis_is_unreachable(client, unreachable_redis):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert body["failing"] == ["models", "redis", "workers"]
    assert body["checks"]["redis"] == "redis unreachable"  # no host, port or exception for the public
    assert body["checks"]["database"] == "ok"


def test_readyz_shows_staff_what_failed_in_detail(client, unreachable_redis, django_user_model):
    staff = django_user_model.objects.create_user(username="op", password="pw-op-12345", is_staff=True)
    client.force_login(staff)

    body = client.get("/readyz").json()

    assert body["checks"]["redis"].startswith("redis unreachable: ConnectionError")


def test_readyz_says_when_no_worker_is_online(client, settings):
    settings.REDIS_KEY_PREFIX = "djinn-test-no-workers-here"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_readyz_waits_while_a_queues_only_worker_loads_its_models(client, celery_worker, start_worker, admin_user):
    model = slow_model_on_a_queue_of_its_own()
    client.force_login(admin_user)

    start_worker(model.queue)

    loading = wait_for(
        lambda: (response := client.get("/readyz")).status_code == 503 and response.json(),
        timeout=LOAD_SECONDS,
        what="/readyz to say the worker is loading",
    )
    assert loading["failing"] == ["models"]
    assert loading["checks"]["models"] == f"workers still loading models: {model.slug} on queue {model.queue}"
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=LOAD_SECONDS + 30, what="the model to load")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_readyz_stays_ready_while_one_worker_loads_beside_a_ready_one(client, celery_worker, start_worker):
    model = slow_model_on_a_queue_of_its_own()
    start_worker(model.queue, env={"MODEL_WARMUP": "false"})  # ready at once: loads each model on its first job
    wait_for(lambda: client.get("/readyz").status_code == 200, what="the first worker")

    loading = start_worker(model.queue)
    wait_for(lambda: loading_on(model.queue), timeout=LOAD_SECONDS, what="the second worker to start loading")

    for _ in range(20):
        assert client.get("/readyz").status_code == 200
    assert loading_on(model.queue)  # all along
    assert f"warmed {model.slug}" not in loading.log()


@pytest.mark.worker
def test_readyz_logs_a_problem_when_it_changes_not_at_every_probe(client, settings, caplog, monkeypatch, celery_worker):
    from ops import health

    with_workers = settings.REDIS_KEY_PREFIX
    wait_for(lambda: client.get("/readyz").status_code == 200, what="/readyz")
    monkeypatch.setattr(health, "_last_logged", ("", 0.0))  # ready, and nothing logged yet
    caplog.clear()
    settings.REDIS_KEY_PREFIX = "djinn-test-no-workers-here"

    with caplog.at_level("INFO", logger="ops.health"):
        for _ in range(3):
            assert client.get("/readyz").status_code == 503
        settings.REDIS_KEY_PREFIX = "djinn-test-still-no-workers"  # the same problem: still once
        client.get("/readyz")
        settings.REDIS_KEY_PREFIX = with_workers
        assert client.get("/readyz").status_code == 200
        assert client.get("/readyz").status_code == 200

    assert [(record.name, record.getMessage()) for record in caplog.records] == [
        ("ops.health", "not ready: no Celery worker has reported in the last 15 seconds"),
        ("ops.health", "ready again"),
    ]  # and no "Service Unavailable" from Django at each probe
