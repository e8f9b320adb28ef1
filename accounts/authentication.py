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
