"""config/autobahn_debug_lines.py: autobahn's debug lines cost nothing unless they are written."""

import pprint

import pytest
import txaio
from autobahn import util
from autobahn.websocket import protocol

from config import autobahn_debug_lines
from tests.support.processes import run_fresh


@pytest.fixture
def installed(monkeypatch):
    for name in ("pformat", "hltype", "hlval"):
        monkeypatch.setattr(protocol, name, getattr(protocol, name))  # put back afterwards
    level = txaio.get_global_log_level()
    autobahn_debug_lines.install()
    yield
    txaio.set_global_log_level(level)


def test_values_of_unwritten_debug_lines_are_not_formatted(installed):
    txaio.set_global_log_level("info")

    assert protocol.hltype(protocol.WebSocketProtocol.sendData) == autobahn_debug_lines.NOT_FORMATTED
    assert protocol.hlval(1234) == autobahn_debug_lines.NOT_FORMATTED
    assert protocol.pformat({"maxFramePayloadSize": 0}) == autobahn_debug_lines.NOT_FORMATTED


def test_written_debug_lines_show_the_values_as_autobahn_formats_them(installed):
    txaio.set_global_log_level("debug")
    send_data = protocol.WebSocketProtocol.sendData

    assert protocol.hltype(send_data) == util.hltype(send_data)
    assert "WebSocketProtocol.sendData" in protocol.hltype(send_data)
    assert protocol.hlval(1234) == util.hlval(1234)
    assert protocol.hlval("peer", color="green", bold=False) == util.hlval("peer", color="green", bold=False)
    assert protocol.pformat({"maxFramePayloadSize": 0}) == pprint.pformat({"maxFramePayloadSize": 0})


def test_daphnes_application_installs_it():
    check = "import config.asgi; from autobahn.websocket import protocol; print(protocol.hltype.__name__)"
    assert run_fresh(check).strip() == "_hltype_if_logged"
