"""A closed websocket's objects go with it, not in a pause of the cyclic garbage collector.

Each websocket daphne served left about 60 objects (its protocol, its HTTP channel and request,
its TCP transport, autobahn's validators and buffers, the application's queue) in reference
cycles that only the cyclic garbage collector frees. Under connection churn (the streaming
benchmark's 200 streams starting and ending together) daphne ran a full collection of ~25,000
such objects every ~5 s, a pause of 25-60 ms in every stream it was serving. Two links close
those cycles; `install()` undoes each once it has served:

- **The HTTP request that asked for the upgrade.** daphne hands the connection to a websocket
  protocol in the middle of `WebRequest.process`, and the request is never finished, so its
  HTTPChannel keeps it in `requests` while the request keeps the channel. Neither is used again:
  the transport now speaks to the websocket protocol.
- **autobahn's `is_closed`.** The Deferred fires with the protocol itself as its result, and the
  protocol holds the Deferred. Once the connection is lost it has called back everything that
  waited on it; nothing in daphne or Channels listens later, and a late listener would be told
  the connection closed (with None).
"""

from __future__ import annotations

from twisted.internet import defer


def install() -> None:
    from daphne.http_protocol import WebRequest
    from daphne.ws_protocol import WebSocketProtocol

    process = WebRequest.process
    connection_lost = WebSocketProtocol.connectionLost

    def process_then_release_an_upgraded_request(request: WebRequest) -> None:
        process(request)
        # daphne takes the transport away from the request when it hands the connection over.
        upgraded = request.transport is None and request.channel is not None
        if upgraded and request in request.channel.requests:
            request.channel.requests.remove(request)

    def connection_lost_then_release_is_closed(protocol: WebSocketProtocol, reason) -> None:
        connection_lost(protocol, reason)
        protocol.is_closed = defer.succeed(None)

    WebRequest.process = process_then_release_an_upgraded_request
    WebSocketProtocol.connectionLost = connection_lost_then_release_is_closed
