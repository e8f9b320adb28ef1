"""`/api/v1/keys`: create (secret shown once), list, revoke; another user's key is a 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_it_creates_a_key_and_shows_the_secret_only_in_that_answer(owner, owner_key):
    client = client_for(owner_key)

    created = client.post("/api/v1/keys", {"name": "ci"}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"djn_{body['prefix']}_")
    assert (body["name"], body["revoked"], body["last_used_at"]) == ("ci", False, None)
    shown = client.get(f"/api/v1/keys/{body['id']}").json()
    assert "key" not in shown
    assert all("key" not in item for item in client.get("/api/v1/keys").json()["data"])
    assert body["key"] not in str(ApiKey.objects.filter(pk=body["id"]).values().first())
    # The new key works.
    assert client_for(body["key"]).get("/api/v1/keys").status_code == 200


def test_it_lists_the_callers_keys_with_last_use_and_never_anyone_elses(owner, owner_key, outsider_key):
    client_for(outsider_key).get("/api/v1/keys")

    listed = client_for(owner_key).get("/api/v1/keys").json()["data"]

    assert [item["prefix"] for item in listed] == list(
        ApiKey.objects.filter(user=owner).order_by("-created_at").values_list("prefix", flat=True)
    )
    assert listed[0]["last_used_at"] is not None  # this very request used it
    assert {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "revoked"} <= set(listed[0])


@pytest.mark.parametrize("how", ["delete", "post-revoke"])
def test_a_revoked_key_is_refused_at_once(owner, owner_key, how):
    spare = api_key_create(user=owner, name="spare")
    victim = client_for(spare.plaintext)
    assert victim.get("/api/v1/keys").status_code == 200

    path = f"/api/v1/keys/{spare.api_key.pk}"
    client = client_for(owner_key)
    response = client.delete(path) if how == "delete" else client.post(f"{path}/revoke")

    assert response.status_code == 200
    assert response.json()["revoked"] is True
    refused = victim.get("/api/v1/keys")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_a_key_can_revoke_itself(owner_key, owner):
    client = client_for(owner_key)
    own = ApiKey.objects.get(user=owner)
    assert client.delete(f"/api/v1/keys/{own.pk}").status_code == 200
    assert client.get("/api/v1/keys").status_code == 401


def test_another_users_key_is_a_404_and_stays_active(outsider, owner_key):
    theirs = api_key_create(user=outsider, name="theirs").api_key
    client = client_for(owner_key)

    for response in (
        client.get(f"/api/v1/keys/{theirs.pk}"),
        client.delete(f"/api/v1/keys/{theirs.pk}"),
        client.post(f"/api/v1/keys/{theirs.pk}/revoke"),
        client.get("/api/v1/keys/999999"),
        client.get("/api/v1/keys/not-a-number"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "api_key_not_found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"name": 5}, "invalid", "name"),
        ({"name": "x" * 101}, "max_length", "name"),
        ({"scope": "all"}, "unknown_field", "scope"),
    ],
)
def test_it_refuses_bad_key_requests(owner_key, body, code, param):
    response = client_for(owner_key).post("/api/v1/keys", body, format="json")
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
