"""Autobahn formats the values of its websocket debug lines whether they are logged or not.

Its `log.debug(...)` calls drop the line unless txaio logs at debug level, but their
arguments are built first, on every call:

- `WebSocketProtocol._connectionMade` pretty-prints each websocket's 29 settings
  (`pformat`): 135 µs of daphne's CPU for every handshake here, a third of the work Twisted
  and autobahn do for an upgrade;
- `sendData`, for every frame daphne sends, and the handshake's and close's lines colour the
  method's qualified name and the values with click (`hltype`, `hlval`): 15-20 % of daphne's
  CPU while 200 streams run (py-spy, both under the streaming benchmark).

`install()` makes that module's `pformat`, `hltype` and `hlval` do their work only when debug
lines are written; otherwise they return a placeholder that no written line ever shows.
"""

from __future__ import annotations

import pprint

import txaio
from autobahn import util

DEBUG_LEVELS = ("debug", "trace")
NOT_FORMATTED = "(not formatted: debug lines are off)"


def _debug_lines_written() -> bool:
    return txaio.get_global_log_level() in DEBUG_LEVELS


def _pformat_if_logged(value) -> str:
    return pprint.pformat(value) if _debug_lines_written() else NOT_FORMATTED


def _hltype_if_logged(obj) -> str:
    return util.hltype(obj) if _debug_lines_written() else NOT_FORMATTED


def _hlval_if_logged(value, color: str = "white", bold: bool = True) -> str:
    return util.hlval(value, color=color, bold=bold) if _debug_lines_written() else NOT_FORMATTED


def install() -> None:
    from autobahn.websocket import protocol

    protocol.pformat = _pformat_if_logged
    protocol.hltype = _hltype_if_logged
    protocol.hlval = _hlval_if_logged
