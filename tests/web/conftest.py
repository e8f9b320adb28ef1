import pytest


@pytest.fixture(autouse=True)
def _forget_login_failures():
    from django.conf import settings

    from inference.streams import redis_client

    client = redis_client()
    for key in client.scan_iter(f"{settings.REDIS_KEY_PREFIX}:web:login-failures:*"):
        client.delete(key)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client
