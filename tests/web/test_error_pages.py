"""Error pages are the site's own, say what happened in words, and lead back; the API's stay JSON."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_the_sites_own_404(owner_client):
    response = owner_client.get("/no-such-page/")

    assert response.status_code == 404
    assert response.templates[0].name == "404.html"
    page = response.content.decode()
    assert "Page not found" in page
    assert 'href="/chat/"' in page  # a signed-in user is led back to their chats, with the site's navigation
    assert "Log out" in page


def test_another_users_job_gets_the_same_404_as_a_missing_one(owner_client, outsider, echo_model):
    from inference.services.jobs import job_submit

    theirs = job_submit(user=outsider, model="echo", input={"messages": [{"role": "user", "content": "mine"}]})

    response = owner_client.get(f"/history/{theirs.id}/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert "mine" not in response.content.decode()


def test_an_unknown_api_url_is_still_json(owner_client):
    response = owner_client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_a_server_error_gets_a_page_in_words(settings, owner):
    settings.ROOT_URLCONF = "tests.web.error_urls"
    client = Client(raise_request_exception=False)
    client.force_login(owner)

    response = client.get("/test-failure/")

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "a bug" not in page  # the error is logged, never shown


def test_a_form_sent_without_its_csrf_token_is_explained(owner):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/login/", {"username": "owner", "password": "pw-owner-1"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
