"""Form fields point at their help and errors by the ids Django's widgets name; the copy tells the truth."""

import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from web.forms import ApiKeyForm

pytestmark = pytest.mark.django_db


def test_every_id_a_field_is_described_by_exists_once(client):
    page = client.post(
        reverse("signup"), {"username": "ada", "email": "not-an-email", "password1": "1", "password2": "2"}
    ).text

    described = dict(re.findall(r'<input[^>]*aria-describedby="([^"]*)"[^>]*id="([^"]*)"', page))
    described = {field_id: targets.split() for targets, field_id in described.items()}
    assert described["id_password2"] == ["id_password2_helptext", "id_password2_error"]
    assert described["id_email"] == ["id_email_helptext", "id_email_error"]
    for targets in described.values():
        for target in targets:
            assert page.count(f'id="{target}"') == 1, target


def autofocused(page: str) -> list[str]:
    return re.findall(r'<(?:input|select|textarea)[^>]*\bautofocus\b[^>]*id="([^"]*)"', page)


def test_a_refused_form_puts_the_cursor_in_the_first_field_to_fix(client):
    assert autofocused(client.get(reverse("signup")).text) == ["id_username"]

    page = client.post(reverse("signup"), {"username": "ada", "password1": "a-long-pass-9", "password2": "b"}).text

    assert autofocused(page) == ["id_email"]


def test_a_refusal_of_the_whole_form_leaves_its_own_focus(client):
    page = client.post(reverse("login"), {"username": "nobody", "password": "wrong-pass"}).text

    assert "That username and password do not match an account." in page
    assert autofocused(page) == ["id_username"]


def test_a_field_with_several_errors_keeps_one_error_id():
    form = ApiKeyForm({"name": "laptop"})
    form.is_valid()
    form.add_error("name", "This name is taken.")
    form.add_error("name", "This name is too plain.")

    html = render_to_string("web/_field.html", {"field": form["name"]})

    assert html.count('id="id_name_error"') == 1
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
    assert html.count('id="id_name_helptext"') == 1
    errors = re.search(r'id="id_name_error">(.*?)</div>', html, re.S).group(1)
    assert errors == "<p>This name is taken.</p><p>This name is too plain.</p>"


def test_after_a_password_change_the_page_says_other_sessions_were_logged_out(owner_client):
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": "pw-owner-1", "new_password1": "b-new-pass-77", "new_password2": "b-new-pass-77"},
        follow=True,
    )

    assert "has been logged out" in response.text
    assert "stay logged in until" not in response.text
