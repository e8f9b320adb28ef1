"""/healthz says the process is alive; /readyz says whether every part it needs answers."""

import pytest

from inference import streams

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.worker
def test_readyz_is_ok_when_the_database_redis_and_a_worker_answer(client, celery_worker):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "workers": "ok"}


@pytest.fixture
def fresh_redis_clients():
    streams.redis_client.cache_clear()
    yield
    streams.redis_client.cache_clear()


def test_readyz_names_redis_when_redis_is_unreachable(client, settings, fresh_redis_clients):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert body["failing"] == ["redis", "workers"]
    assert body["checks"]["redis"] == "redis unreachable"  # no host, port or exception for the public
    assert body["checks"]["database"] == "ok"


def test_readyz_shows_staff_what_failed_in_detail(client, settings, fresh_redis_clients, django_user_model):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    staff = django_user_model.objects.create_user(username="op", password="pw-op-12345", is_staff=True)
    client.force_login(staff)

    body = client.get("/readyz").json()

    assert body["checks"]["redis"].startswith("redis unreachable: ConnectionError")


def test_readyz_says_when_no_worker_is_online(client, settings):
    settings.REDIS_KEY_PREFIX = "djinn-test-no-workers-here"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]
