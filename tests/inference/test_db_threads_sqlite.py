"""The database threads work on the embedded default too (SQLite, as `make run` starts it)."""

import os
import subprocess
import sys

from tests.support.processes import ROOT

SCRIPT = """
import asyncio
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from inference.db_threads import run_db

async def main():
    await run_db(User.objects.create, username="embedded")
    for _ in range(3):  # each piece of work after the first reuses the thread's connection
        print(await run_db(User.objects.filter(username="embedded").count))

asyncio.run(main())
"""


def test_database_threads_keep_a_sqlite_connection_between_pieces_of_work(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'djinn.sqlite3'}")

    ran = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["1", "1", "1"]
