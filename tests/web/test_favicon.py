"""Every page names Djinn's icon, and browsers that ask /favicon.ico anyway are sent to it."""

import pytest

ICON_LINK = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/login/", "/no-such-page/", "/admin/login/"])
def test_pages_name_the_icon(client, path):
    page = client.get(path).content.decode()

    assert ICON_LINK in page


@pytest.mark.django_db
def test_the_ops_dashboard_names_the_icon(admin_client):
    assert ICON_LINK in admin_client.get("/ops/").content.decode()


def test_favicon_ico_leads_to_the_icon(client):
    redirect = client.get("/favicon.ico")
    icon = client.get(redirect["Location"])

    assert (redirect.status_code, redirect["Location"]) == (302, "/static/favicon.svg")
    assert "max-age=86400" in redirect["Cache-Control"]
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)
