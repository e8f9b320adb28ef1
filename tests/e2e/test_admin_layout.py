"""The admin's own forms in a real browser: what the operator sees fits on the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_backend_choice_with_its_long_descriptions_stays_inside_the_model_form(new_page):
    User.objects.create_superuser("operator", "operator@example.com", "a-long-pass-9")
    page = new_page(width=1280)
    page.goto("/admin/login/?next=/admin/inference/aimodel/add/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("a-long-pass-9")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Add AI model")).to_be_visible()

    choice = page.locator("#id_backend").bounding_box()
    row = page.locator(".form-row.field-backend").bounding_box()

    # The row clips what passes its edge: the longest description ran past it, out of sight.
    assert choice["x"] + choice["width"] <= row["x"] + row["width"]
