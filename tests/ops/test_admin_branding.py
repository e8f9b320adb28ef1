"""The admin is Djinn's: its name in the header and the tab, and a way to the ops dashboard."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_admin_is_named_djinn_and_leads_to_the_ops_dashboard(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/admin/">Djinn administration</a>' in page
    assert "<title>Models, jobs, users and keys | Djinn admin</title>" in page
    assert '<a href="/ops/">Ops dashboard</a>' in page
    assert admin_client.get("/ops/").status_code == 200
