"""Daphne dropped websockets whose client took a moment to answer its close: give clients seconds, not milliseconds.

After the last event of a stream daphne sends a close frame and waits for the client's
answer, for autobahn's `closeHandshakeTimeout` (1 s, which daphne does not change). But the
timer runs on txaio's batched timer, which rounds its deadline *down* to a whole second of
the clock: closing at 12.97 s, the connection was aborted at 13.00 s, 30 ms later. A client
busy for those few milliseconds (a tab rendering, 200 streams ending together on one
machine) lost the connection with a reset instead of a clean 1000 close; the streaming
benchmark's clients saw it as a dropped stream and reconnected to read its end again.

`install()` sets the timeout to CLOSE_HANDSHAKE_TIMEOUT_SECONDS: after the rounding daphne waits
between that less one second and that. A client that never answers is still let go.
"""

from __future__ import annotations

CLOSE_HANDSHAKE_TIMEOUT_SECONDS = 5


def install() -> None:
    from autobahn.websocket.protocol import WebSocketServerFactory

    reset = WebSocketServerFactory.resetProtocolOptions

    def reset_protocol_options(factory: WebSocketServerFactory) -> None:
        reset(factory)
        factory.closeHandshakeTimeout = CLOSE_HANDSHAKE_TIMEOUT_SECONDS

    WebSocketServerFactory.resetProtocolOptions = reset_protocol_options
