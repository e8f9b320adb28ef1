"""Settings for the test run: real PostgreSQL and Redis, never the ones a developer uses.

The test database and Redis database come from TEST_DATABASE_URL and
TEST_REDIS_URL; leases are short so crash recovery is quick to observe.
Processes the tests start (workers, daphne) get this environment with
DJANGO_SETTINGS_MODULE=config.settings.
"""

import os

os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djinn")
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ["REDIS_KEY_PREFIX"] = "djinn-test"
os.environ["DJANGO_DEBUG"] = "true"
os.environ.setdefault("JOB_HEARTBEAT_SECONDS", "0.3")
os.environ.setdefault("JOB_LEASE_SECONDS", "2")
os.environ.setdefault("JOB_REAPER_INTERVAL_SECONDS", "0.5")
# The session worker's beat never seals /metrics' job totals: tests write jobs that ended days ago, and
# a seal in the middle of a test would take them out of its count. Tests seal where they mean to.
os.environ.setdefault("JOB_TOTALS_SEAL_INTERVAL_SECONDS", str(10**9))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Every test signs up from 127.0.0.1; the throttle's own test lowers this.
os.environ.setdefault("WEB_SIGNUPS_PER_HOUR", "10000")

from config.settings import *  # noqa: F403
