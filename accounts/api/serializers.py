"""API keys on the wire. The secret appears in one answer only: the one that creates it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import ApiKey
from inference.api.serializers import StrictCharField, StrictSerializer


class ApiKeyCreateInput(StrictSerializer):
    name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    object = serializers.ChoiceField(choices=["api_key"])
    name = serializers.CharField(allow_blank=True)
    prefix = serializers.CharField(help_text="The visible start of the key: djn_<prefix>_...")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked = serializers.BooleanField()


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The whole key. Shown this once; only its hash is stored.")


class ApiKeyListOutput(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = ApiKeyOutput(many=True)


def api_key_representation(api_key: ApiKey) -> dict[str, Any]:
    return {
        "id": api_key.pk,
        "object": "api_key",
        "name": api_key.name,
        "prefix": api_key.prefix,
        "created_at": api_key.created_at.isoformat(),
        "last_used_at": api_key.last_used_at.isoformat() if api_key.last_used_at else None,
        "revoked_at": api_key.revoked_at.isoformat() if api_key.revoked_at else None,
        "revoked": api_key.revoked_at is not None,
    }
