"""Daphne's application module loads what every request needs before it sets start-up aside from the GC."""

import os
import subprocess
import sys

from tests.support.processes import ROOT

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
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL="sqlite://:memory:")
    result = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    frozen, tracked = map(int, result.stdout.split())

    assert frozen > 100_000  # Django, DRF, Channels, Twisted and every view module
    assert tracked < 2_000  # resolving loaded nothing new (the views' modules alone are ~24,000)
