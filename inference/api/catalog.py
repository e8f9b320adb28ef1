"""The model catalog: what can run, what each task accepts, and each model's limits."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.api.schema import errors
from inference.errors import ModelNotFound
from inference.models import AIModel, Task
from inference.selectors import ai_models_enabled
from inference.validation import input_schema


class ModelLimitsOutput(serializers.Serializer):
    max_input_chars = serializers.IntegerField()
    max_output_tokens = serializers.IntegerField()


class ModelOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The slug to name in a job.")
    object = serializers.ChoiceField(choices=["model"])
    display_name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    task = serializers.ChoiceField(choices=Task.choices)
    limits = ModelLimitsOutput()
    default_params = serializers.DictField()
    input_schema = serializers.DictField(help_text="JSON Schema of a job's `input` for this model's task.")
    url = serializers.CharField()


class ModelListOutput(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = ModelOutput(many=True)


def model_representation(model: AIModel, request: Request) -> dict[str, Any]:
    return {
        "id": model.slug,
        "object": "model",
        "display_name": model.display_name,
        "description": model.description,
        "task": model.task,
        "limits": {"max_input_chars": model.max_input_chars, "max_output_tokens": model.max_output_tokens},
        "default_params": model.default_params,
        "input_schema": input_schema(model.task),
        "url": request.build_absolute_uri(reverse("api:model-detail", kwargs={"slug": model.slug})),
    }


class ModelListView(APIView):
    @extend_schema(
        operation_id="models_list",
        summary="List the models you can run",
        responses={200: ModelListOutput, **errors(401, 403)},
        tags=["models"],
    )
    def get(self, request: Request) -> Response:
        models = ai_models_enabled().order_by("slug")
        return Response({"object": "list", "data": [model_representation(model, request) for model in models]})


class ModelDetailView(APIView):
    @extend_schema(
        operation_id="models_retrieve",
        summary="Get a model, with its input JSON Schema and limits",
        responses={200: ModelOutput, **errors(401, 403, 404)},
        tags=["models"],
    )
    def get(self, request: Request, slug: str) -> Response:
        model = ai_models_enabled().filter(slug=slug).first()
        if model is None:
            raise ModelNotFound(f"There is no model named {slug!r}.", param="slug")
        return Response(model_representation(model, request))
