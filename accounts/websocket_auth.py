"""Who is on the other end of a websocket: an API key, or a browser session from our own origin.

A browser cannot set an Authorization header on a websocket, so a handshake
that carries one is not riding on anyone's cookies and needs no origin
check. A cookie-authenticated handshake must come from one of our hosts,
or any page on the web could open sockets as the visitor.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from accounts.authentication import bearer_token
from accounts.models import User
from accounts.services import api_key_authenticate, api_key_prefix

# Where the middleware leaves a handshake's API key for `scope_user`.
API_KEY_TOKEN = "djinn_api_key_token"


def _authorization_header(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return value.decode("latin1")
    return None


class ApiKeyOrSessionAuthMiddleware:
    """Puts who is calling in the scope: the session's user, or the API key to check (see `scope_user`)."""

    def __init__(self, inner):
        self.inner = inner
        self.session_app = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        header = _authorization_header(scope)
        if header is None:
            return await self.session_app(scope, receive, send)
        # The key is checked by the consumer, in the database call it makes anyway (its job's
        # lookup): a handshake crossed to the database threads twice, once here and once there.
        return await self.inner({**scope, "user": None, API_KEY_TOKEN: bearer_token(header) or ""}, receive, send)


def scope_key_prefix(scope) -> str | None:
    """The prefix of the API key a websocket's handshake carried; None for a browser session."""
    token = scope.get(API_KEY_TOKEN)
    return api_key_prefix(token) if token else None


def scope_user(scope) -> User | AnonymousUser:
    """Who a websocket's scope names: its session's user, or its API key's (blocking: call it on a
    database thread). An invalid, revoked or missing key is AnonymousUser, closed with 4401."""
    token = scope.get(API_KEY_TOKEN)
    if token is None:
        return scope.get("user") or AnonymousUser()
    api_key = api_key_authenticate(plaintext=token) if token else None
    return api_key.user if api_key is not None else AnonymousUser()
