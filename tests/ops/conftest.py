import pytest

from tests.ops.scraping import TOKEN


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(username="operator", email="op@example.com", password="pw-op-1")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture(autouse=True)
def _fresh_dashboard_figures():
    """The dashboard's figures are shared through Redis for two seconds: no test sees another test's."""
    from inference.streams import redis_client
    from ops.stats import dashboard_cache_keys

    redis_client().delete(*dashboard_cache_keys())


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN
