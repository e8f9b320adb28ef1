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
from accounts.services import api_key_authenticate
from inference.db_threads import run_db  # many handshakes at once must not queue on one thread


def _authorization_header(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return value.decode("latin1")
    return None


class ApiKeyOrSessionAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner
        self.session_app = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        header = _authorization_header(scope)
        if header is None:
            return await self.session_app(scope, receive, send)
        token = bearer_token(header)
        api_key = await run_db(api_key_authenticate, plaintext=token) if token else None
        if api_key is None:
            # The consumer closes with 4401, as it does for a handshake with no credentials at all.
            return await self.inner({**scope, "user": AnonymousUser()}, receive, send)
        return await self.inner({**scope, "user": api_key.user, "api_key_id": api_key.pk}, receive, send)
