import pytest


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(username="operator", email="op@example.com", password="pw-op-1")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}
