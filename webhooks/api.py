"""`/api/v1/webhooks/...`: your signing secret and the log of every delivery made to you."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.api.pagination import page
from inference.api.schema import errors
from inference.api.serializers import query_data
from inference.selectors import job_get_for_user
from webhooks.models import DeliveryStatus, SigningSecret, WebhookDelivery, WebhookEvent
from webhooks.selectors import deliveries_for_user, delivery_get_for_user
from webhooks.services import signing_secret_get, signing_secret_rotate


class SigningSecretOutput(serializers.Serializer):
    object = serializers.ChoiceField(choices=["webhook_signing_secret"])
    secret = serializers.CharField(help_text="`whsec_...`: verify `webhook-signature` with it (Standard Webhooks).")
    rotated_at = serializers.DateTimeField()


class AttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    response_excerpt = serializers.CharField(allow_blank=True)


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The `webhook-id` header of every attempt.")
    object = serializers.ChoiceField(choices=["webhook_delivery"])
    job = serializers.UUIDField()
    event = serializers.ChoiceField(choices=WebhookEvent.choices)
    type = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class DeliveryDetailOutput(DeliveryOutput):
    payload = serializers.DictField()
    attempt_log = AttemptOutput(many=True)


class DeliveryListOutput(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = DeliveryOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class DeliveryFilters(serializers.Serializer):
    job = serializers.UUIDField(required=False, help_text="Only deliveries of this job.")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    cursor = serializers.CharField(required=False, max_length=1000, trim_whitespace=False)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def delivery_representation(delivery: WebhookDelivery, *, detail: bool = False) -> dict[str, Any]:
    body = {
        "id": delivery.message_id,
        "object": "webhook_delivery",
        "job": str(delivery.job_id),
        "event": delivery.event,
        "type": delivery.event_type,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "delivered_at": _iso(delivery.delivered_at),
    }
    if detail:
        body["payload"] = delivery.payload
        body["attempt_log"] = [
            {
                "number": attempt.number,
                "started_at": _iso(attempt.started_at),
                "duration_ms": attempt.duration_ms,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
            }
            for attempt in delivery.attempt_log.all()
        ]
    return body


def secret_representation(secret: SigningSecret) -> dict[str, Any]:
    return {"object": "webhook_signing_secret", "secret": secret.secret, "rotated_at": _iso(secret.rotated_at)}


class SigningSecretView(APIView):
    @extend_schema(
        operation_id="webhooks_secret_retrieve",
        summary="Your webhook signing secret",
        responses={200: SigningSecretOutput, **errors(401, 403)},
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        secret = signing_secret_get(user=request.user)
        return Response(
            {"object": "webhook_signing_secret", "secret": secret.secret, "rotated_at": _iso(secret.rotated_at)}
        )


class SigningSecretRotateView(APIView):
    @extend_schema(
        operation_id="webhooks_secret_rotate",
        summary="Replace your webhook signing secret",
        request=None,
        responses={200: SigningSecretOutput, **errors(401, 403)},
        tags=["webhooks"],
    )
    def post(self, request: Request) -> Response:
        secret = signing_secret_rotate(user=request.user)
        return Response(
            {"object": "webhook_signing_secret", "secret": secret.secret, "rotated_at": _iso(secret.rotated_at)}
        )


class DeliveryListView(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        summary="Your webhook deliveries, newest first",
        parameters=[DeliveryFilters],
        responses={200: DeliveryListOutput, **errors(400, 401, 403, 404)},
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        filters = DeliveryFilters(data=query_data(request))
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        deliveries = deliveries_for_user(user=request.user)
        if "job" in params:
            deliveries = deliveries.filter(job=job_get_for_user(user=request.user, job_id=params["job"]))
        if "status" in params:
            deliveries = deliveries.filter(status=params["status"])
        result = page(deliveries, cursor=params.get("cursor"), limit=params["limit"], scope="webhook_deliveries")
        return Response(
            {
                "object": "list",
                "data": [delivery_representation(delivery) for delivery in result["rows"]],
                "has_more": result["has_more"],
                "next_cursor": result["next_cursor"],
            }
        )


class DeliveryDetailView(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        summary="A webhook delivery with its payload and every attempt",
        responses={200: DeliveryDetailOutput, **errors(401, 403, 404)},
        tags=["webhooks"],
    )
    def get(self, request: Request, delivery_id: str) -> Response:
        delivery = delivery_get_for_user(user=request.user, delivery_id=delivery_id)
        return Response(delivery_representation(delivery, detail=True))
