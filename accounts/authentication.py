"""`Authorization: Bearer <api key>` for DRF."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from accounts.services import api_key_authenticate


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        token = bearer_token(header)
        if token is None:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.", code="invalid_api_key")
        api_key = api_key_authenticate(plaintext=token)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is invalid or revoked.", code="invalid_api_key")
        return api_key.user, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="djinn"'


async def authenticate_async(request) -> tuple[object | None, str]:
    """For async views outside DRF: (user, "") or (None, error code). Same rules as the DRF class."""
    from inference.db_threads import run_db  # the API's database threads, not Django's one sync thread

    header = request.headers.get("Authorization")
    if header:
        token = bearer_token(header)
        api_key = await run_db(api_key_authenticate, plaintext=token) if token else None
        return (api_key.user, "") if api_key else (None, "invalid_api_key")
    user = await request.auser()
    return (user, "") if user.is_authenticated else (None, "not_authenticated")
