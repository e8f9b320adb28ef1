"""`GET /api/v1/usage`: tokens per day, jobs by status, and the caller's plan."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.api.schema import errors
from inference.api.serializers import query_data, validated
from inference.usage import usage_for_user


class DailyUsageOutput(serializers.Serializer):
    date = serializers.DateField()
    jobs = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class PlanOutput(serializers.Serializer):
    name = serializers.CharField()
    concurrent_jobs = serializers.IntegerField(allow_null=True, help_text="null: no limit")
    requests_per_minute = serializers.IntegerField(allow_null=True)
    tokens_per_day = serializers.IntegerField(allow_null=True)


class CurrentUsageOutput(serializers.Serializer):
    active_jobs = serializers.IntegerField()
    requests_last_minute = serializers.IntegerField()
    tokens_today = serializers.IntegerField()
    tokens_reserved = serializers.IntegerField(
        help_text="Tokens your queued and running jobs may spend: their prompts (estimated) and max_tokens."
    )
    tokens_remaining_today = serializers.IntegerField(allow_null=True)


class PeriodOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()


class UsageResponse(serializers.Serializer):
    object = serializers.ChoiceField(choices=["usage"])
    period = PeriodOutput()
    daily = DailyUsageOutput(many=True)
    jobs_by_status = serializers.DictField(child=serializers.IntegerField())
    plan = PlanOutput()
    current = CurrentUsageOutput()


class UsageQuery(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=90, default=7)


class UsageView(APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        summary="Your tokens per day, jobs by status, and your plan's limits",
        parameters=[OpenApiParameter("days", int, description="How many UTC days, today included (1-90).")],
        responses={200: UsageResponse, **errors(400, 401, 403)},
        tags=["usage"],
    )
    def get(self, request: Request) -> Response:
        query = validated(UsageQuery(data=query_data(request)))
        return Response(usage_for_user(user=request.user, days=query["days"]))
