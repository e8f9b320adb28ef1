import re

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


def test_an_email_address_signs_up_one_account(client, owner):
    owner.email = "owner@example.com"
    owner.save()

    response = client.post(
        reverse("signup"),
        {"username": "ada", "email": "Owner@EXAMPLE.com", "password1": "a-long-pass-9", "password2": "a-long-pass-9"},
    )

    assert response.status_code == 200
    assert "An account already uses this email address." in response.text
    assert not get_user_model().objects.filter(username="ada").exists()


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
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 300
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
    sent = mail.outbox[0]
    assert sent.subject == "Reset your Djinn password"
    assert sent.body.startswith("Hello owner,")
    link = re.search(r"http://testserver(/password-reset/\S+/)", sent.body).group(1)
    # The link leads to the page that sets a new password; afterwards it is spent.
    set_password = client.get(link, follow=True)
    assert "New password" in set_password.text
    client.post(
        set_password.redirect_chain[-1][0], {"new_password1": "c-new-pass-88", "new_password2": "c-new-pass-88"}
    )
    assert client.login(username="owner", password="c-new-pass-88")
    client.logout()
    assert "New password" not in client.get(link, follow=True).text


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


def _sign_up(client, username: str, address: str):
    password = "a-long-pass-9"
    return client.post(
        reverse("signup"),
        {"username": username, "email": f"{username}@example.com", "password1": password, "password2": password},
        REMOTE_ADDR=address,
    )


def test_sign_ups_from_one_address_are_limited_per_hour(client, settings):
    settings.WEB_SIGNUPS_PER_HOUR = 2
    for name in ("first", "second"):
        assert _sign_up(client, name, "203.0.113.7").status_code == 302
        client.logout()

    refused = _sign_up(client, "third", "203.0.113.7")
    elsewhere = _sign_up(client, "fourth", "203.0.113.8")

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "Too many new accounts from your network. Try again in" in refused.text
    assert not get_user_model().objects.filter(username="third").exists()
    assert elsewhere.status_code == 302


def test_reset_mails_to_one_mailbox_are_limited_per_hour(client, django_user_model):
    django_user_model.objects.create_user(username="bea", email="bea@example.com", password="pw-bea-12345")
    addresses = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]

    responses = [
        client.post(reverse("password_reset"), {"email": "bea@example.com"}, REMOTE_ADDR=address)
        for address in addresses
    ]

    assert [r.status_code for r in responses] == [302, 302, 302, 429]
    assert 1 <= int(responses[-1]["Retry-After"]) <= 3600
    assert "Too many reset requests. Try again in" in responses[-1].text
    assert len(mail.outbox) == 3


def test_reset_requests_from_one_address_are_limited_per_hour(client, settings):
    settings.WEB_PASSWORD_RESETS_PER_HOUR = 2
    responses = [
        client.post(reverse("password_reset"), {"email": f"nobody{i}@example.com"}, REMOTE_ADDR="198.51.100.9")
        for i in range(3)
    ]

    # The same answer whether or not the mailbox has an account: only the count tells.
    assert [r.status_code for r in responses] == [302, 302, 429]
