"""A closed websocket's objects go with it, not in a pass of daphne's cyclic collector (config/websocket_cycles.py).

A real daphne and real websocket clients; daphne counts, when asked, what its collector had to free.
"""

import json
import signal
from pathlib import Path

import pytest

from inference.models import AIModel
from inference.services.jobs import job_cancel, job_submit
from tests.support.processes import DaphneProcess, wait_for
from tests.support.watchers import open_job_socket, watch_socket

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 20
# What each websocket left in cycles, before: its protocol, the HTTP request and channel that
# asked for the upgrade, its TCP transport (and ~55 more objects of autobahn's and Twisted's).
CONNECTION_TYPES = ("WebSocketProtocol", "WebRequest", "HTTPChannel", "Server")


@pytest.fixture
def census_daphne(worker_env, tmp_path):
    daphne = DaphneProcess(
        {**worker_env, "GC_CENSUS_PATH": str(tmp_path / "census.json")}, module="tests.support.daphne_gc_census"
    )
    yield daphne.start()
    daphne.stop()


def census(daphne: DaphneProcess) -> dict[str, dict[str, int]]:
    """daphne's objects by type, `in_use` and `garbage` (what its cyclic collector found unreachable)."""
    path = Path(daphne.env["GC_CENSUS_PATH"])
    path.unlink(missing_ok=True)
    daphne.process.send_signal(signal.SIGUSR1)
    wait_for(path.exists, timeout=10, what="daphne's census")
    return json.loads(path.read_text())


def test_websockets_closed_by_either_side_leave_nothing_to_the_cyclic_collector(census_daphne, owner, owner_key):
    daphne = census_daphne
    AIModel.objects.create(slug="unserved", display_name="Unserved", task="chat", backend="echo", queue="nobody")
    job = job_submit(user=owner, model="unserved", input={"messages": [{"role": "user", "content": "hi"}]})

    for _ in range(SOCKETS):  # the client closes, in the middle of the stream
        with open_job_socket(daphne, job.id, owner_key) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "status"
    job_cancel(job=job)
    for _ in range(SOCKETS):  # daphne closes, after `done`
        with open_job_socket(daphne, job.id, owner_key) as ws:
            watch = watch_socket(ws, timeout=10)
        assert watch.close_code == 1000
        assert watch.events[-1]["type"] == "done"
    # daphne lets go of a closed connection's protocol within a second or two (its application checker).
    wait_for(lambda: not census(daphne)["in_use"].get("WebSocketProtocol"), timeout=15, what="daphne to let go")

    left = census(daphne)["garbage"]
    assert {name: left.get(name, 0) for name in CONNECTION_TYPES} == dict.fromkeys(CONNECTION_TYPES, 0)
