"""Autobahn pretty-prints each websocket's 29 settings for a debug line, whether it is logged or not.

`WebSocketProtocol._connectionMade` hands `pformat(settings)` to `log.debug`, which drops it
unless txaio logs at debug level: 135 µs of daphne's CPU for every handshake here, a third of
the work Twisted and autobahn do for an upgrade (py-spy, under the streaming benchmark).
`install()` makes that module's `pformat` do its work only when debug lines are written.
"""

from __future__ import annotations

import pprint

import txaio

DEBUG_LEVELS = ("debug", "trace")


def _pformat_if_logged(value) -> str:
    if txaio.get_global_log_level() in DEBUG_LEVELS:
        return pprint.pformat(value)
    return "(not formatted: debug lines are off)"


def install() -> None:
    from autobahn.websocket import protocol

    protocol.pformat = _pformat_if_logged
