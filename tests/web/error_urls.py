"""The platform's URLs and one that fails, to see the page a server error gets (tests/web/test_error_pages.py)."""

from django.urls import path

from config.urls import urlpatterns as platform_urlpatterns


def fail(request):
    raise RuntimeError("a bug")


urlpatterns = [path("test-failure/", fail), *platform_urlpatterns]
