"""Daphne's application module: what it loads and installs before the first request."""

from tests.support.processes import run_fresh

# What daphne does first (imports config.asgi), then what a first request does (resolves its URL):
# the objects the cyclic collector tracks afterwards are what a full collection would walk.
FIRST_REQUEST = """
import gc
import config.asgi
from django.urls import resolve
resolve("/api/v1/jobs")
resolve("/admin/")
print(gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_the_urlconf_is_loaded_and_frozen_before_the_first_request():
    frozen, tracked = map(int, run_fresh(FIRST_REQUEST).split())

    assert frozen > 100_000  # Django, DRF, Channels, Twisted and every view module
    assert tracked < 2_000  # resolving loaded nothing new (the views' modules alone are ~24,000)


def test_daphnes_application_makes_its_sockets_write_through():
    """config/twisted_write_through.py (its behaviour: test_twisted_write_through.py)."""
    check = "import config.asgi; from twisted.internet import tcp; print(tcp.Connection.write.djinn_write_through)"
    assert run_fresh(check).strip() == "True"
