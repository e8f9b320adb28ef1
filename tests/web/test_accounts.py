import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_sign_up_creates_the_account_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {"username": "ada", "email": "ada@example.com", "password1": "a-long-pass-9", "password2": "a-long-pass-9"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("chat")
    assert get_user_model().objects.filter(username="ada", email="ada@example.com").exists()
    assert client.get(reverse("chat")).status_code == 200


def test_sign_up_shows_what_is_wrong(client):
    response = client.post(
        reverse("signup"), {"username": "ada", "email": "not-an-email", "password1": "x1", "password2": "x2"}
    )
    assert response.status_code == 200
    assert "Enter a valid email address." in response.text
    assert "The two password fields" in response.text


def test_bad_credentials_say_so_in_plain_words(client, owner):
    response = client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    assert response.status_code == 200
    assert "That username and password do not match an account" in response.text


def test_good_credentials_log_in(client, owner):
    response = client.post(reverse("login"), {"username": "owner", "password": "pw-owner-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("chat")


def test_repeated_failures_are_throttled_even_with_the_right_password(client, owner):
    for _ in range(5):
        client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "owner", "password": "pw-owner-1"})
    assert response.status_code == 200
    assert "Too many failed attempts. Try again in" in response.text
    assert "_auth_user_id" not in client.session


def test_pages_need_a_login(client):
    for name in ("chat", "history", "keys", "usage", "playground-embeddings"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_password_reset_mails_a_link(client, owner):
    response = client.post(reverse("password_reset"), {"email": "owner@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/password-reset/" in mail.outbox[0].body


def test_password_change_needs_the_old_password(owner_client):
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "b-new-pass-77", "new_password2": "b-new-pass-77"},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.text
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": "pw-owner-1", "new_password1": "b-new-pass-77", "new_password2": "b-new-pass-77"},
    )
    assert response.status_code == 302


def test_logout_is_a_post(owner_client):
    response = owner_client.post(reverse("logout"))
    assert response.status_code == 302
    assert owner_client.get(reverse("chat")).status_code == 302
