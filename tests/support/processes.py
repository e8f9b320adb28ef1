"""Real platform processes for tests: Celery workers, daphne, a Redis of a test's own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll until `predicate()` is truthy; return its value or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class WorkerProcess:
    """A `celery worker` child process on the test database and Redis."""

    def __init__(
        self,
        env: dict[str, str],
        queues: str = "default",
        beat: bool = False,
        concurrency: int = 1,
        pool: str = "prefork",
        as_deployed: bool = False,
    ):
        """`as_deployed`: with gossip and mingle, as `make run` and a default worker run; tests leave them out
        (they only slow a start down), but a broker outage goes through them."""
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.env = env
        self.queues = queues
        self.beat = beat
        self.concurrency = concurrency
        self.pool = pool
        self.as_deployed = as_deployed
        self.process: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{self.name.split('@')[0]}.log"

    def start(self, wait: bool = True) -> WorkerProcess:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-n",
            self.name,
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "-P",
            self.pool,
            "-l",
            "info",
        ]
        if not self.as_deployed:
            args += ["--without-gossip", "--without-mingle"]
        if self.beat:
            args += ["-B", "-s", str(ARTIFACTS / f"beat-{self.name.split('@')[0]}")]
        log = open(self.log_path, "w")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            return "ready." in self.log()

        wait_for(ready, timeout=timeout, what=f"worker {self.name} to start")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: a crash, not a shutdown."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    """A Redis of a test's own, without persistence: the test can stop it without touching the session's."""
    server = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: port_open(port), what="a Redis of the test's own to start")
    return server


class DaphneProcess:
    """A real daphne serving config.asgi on a free loopback port."""

    def __init__(self, env: dict[str, str], module: str = "daphne"):
        """`module`: what `python -m` runs with daphne's arguments (daphne, or a wrapper of it)."""
        self.env = env
        self.module = module
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"daphne-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> DaphneProcess:
        """Start daphne; again after `kill`, on the same address (a restart), its log carrying on."""
        args = [sys.executable, "-m", self.module, "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
        log = open(self.log_path, "a" if self.process else "w")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"daphne exited early:\n{self.log_path.read_text()}")
            return port_open(self.port)

        wait_for(up, timeout=30, what="daphne to listen")
        return self

    def kill(self) -> None:
        """SIGKILL daphne: a crash, not a shutdown; its clients' connections drop without a close."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def run_fresh(code: str) -> str:
    """What `code` prints, run by a new Python process (as daphne starts, nothing imported yet)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL="sqlite://:memory:")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
