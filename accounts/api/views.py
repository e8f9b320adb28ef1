"""`/api/v1/keys`: create (the secret shown once), list, get and revoke your API keys."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    ApiKeyCreatedOutput,
    ApiKeyCreateInput,
    ApiKeyListOutput,
    ApiKeyOutput,
    api_key_representation,
)
from accounts.selectors import api_key_get_for_user, api_keys_for_user
from accounts.services import api_key_create, api_key_revoke
from inference.api.schema import WRITE, errors
from inference.api.serializers import validated


class ApiKeyListCreateView(APIView):
    @extend_schema(
        operation_id="keys_list",
        summary="List your API keys (revoked ones too)",
        responses={200: ApiKeyListOutput, **errors(401, 403)},
        tags=["keys"],
    )
    def get(self, request: Request) -> Response:
        keys = api_keys_for_user(user=request.user)
        return Response({"object": "list", "data": [api_key_representation(key) for key in keys]})

    @extend_schema(
        operation_id="keys_create",
        summary="Create an API key",
        request=ApiKeyCreateInput,
        responses={201: OpenApiResponse(ApiKeyCreatedOutput, description="Store `key` now."), **errors(*WRITE)},
        tags=["keys"],
    )
    def post(self, request: Request) -> Response:
        payload = validated(ApiKeyCreateInput(data=request.data))
        issued = api_key_create(user=request.user, name=payload["name"])
        body = {**api_key_representation(issued.api_key), "key": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    @extend_schema(
        operation_id="keys_retrieve",
        summary="Get an API key",
        responses={200: ApiKeyOutput, **errors(401, 403, 404)},
        tags=["keys"],
    )
    def get(self, request: Request, key_id: str) -> Response:
        return Response(api_key_representation(api_key_get_for_user(user=request.user, key_id=key_id)))

    @extend_schema(
        operation_id="keys_destroy",
        summary="Revoke an API key",
        description="The key is refused from the next request on. Revoking twice keeps the first time.",
        responses={200: ApiKeyOutput, **errors(401, 403, 404)},
        tags=["keys"],
    )
    def delete(self, request: Request, key_id: str) -> Response:
        api_key = api_key_revoke(api_key=api_key_get_for_user(user=request.user, key_id=key_id))
        return Response(api_key_representation(api_key))


class ApiKeyRevokeView(APIView):
    @extend_schema(
        operation_id="keys_revoke",
        summary="Revoke an API key (for clients that cannot send DELETE)",
        request=None,
        responses={200: ApiKeyOutput, **errors(401, 403, 404)},
        tags=["keys"],
    )
    def post(self, request: Request, key_id: str) -> Response:
        api_key = api_key_revoke(api_key=api_key_get_for_user(user=request.user, key_id=key_id))
        return Response(api_key_representation(api_key))
