"""ASGI entry point: HTTP through Django, websockets through Channels."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_POOL", "true")  # see DATABASE_POOL in config/settings.py
django.setup(set_prefix=False)  # before importing consumers (and as get_asgi_application() does)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from accounts.websocket_auth import ApiKeyOrSessionAuthMiddleware  # noqa: E402
from config import (  # noqa: E402
    autobahn_close_handshake,
    autobahn_debug_lines,
    twisted_form_parsing,
    twisted_write_through,
    websocket_cycles,
)
from config.asgi_handler import RequestHandler  # noqa: E402
from config.request_threads import RequestThreads  # noqa: E402
from inference.routing import websocket_urlpatterns  # noqa: E402
from ops.websockets import WebsocketCounter  # noqa: E402

autobahn_close_handshake.install()
autobahn_debug_lines.install()
twisted_form_parsing.install()
twisted_write_through.install()
websocket_cycles.install()

application = ProtocolTypeRouter(
    {
        "http": RequestThreads(RequestHandler()),
        "websocket": WebsocketCounter(ApiKeyOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# The URLconf imports every view module (DRF, the admin, the API schema): loaded now rather than
# by the first request, it is set aside below with the rest (it was 24,000 objects, 165 ms). So is
# its table for reverse(), which a job's answer needs for its URLs (5 ms of the first submission).
get_resolver().reverse_dict  # noqa: B018

# What start-up made (Django, its apps, Channels, Twisted) stays for the process's life: set it
# aside from the cyclic garbage collector, which otherwise walks it at every full collection,
# a pause in every stream daphne is serving at that moment. New objects are collected as usual.
gc.freeze()
