"""The model registry's defaults: what `make run` registers on a fresh install."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from inference.models import AIModel, Task


@dataclass(frozen=True)
class DefaultModel:
    slug: str
    display_name: str
    task: str
    backend: str
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    max_output_tokens: int = 1024


DEFAULT_MODELS = (
    DefaultModel(
        slug="echo",
        display_name="Echo",
        task=Task.CHAT,
        backend="echo",
        config={"tokens_per_second": 50},
        description="Repeats your last message word by word. Deterministic; for smoke tests.",
    ),
)


@transaction.atomic
def ai_models_register_defaults() -> list[AIModel]:
    """Register each default model that is missing; never overwrite an operator's edits."""
    created = []
    for default in DEFAULT_MODELS:
        if AIModel.objects.filter(slug=default.slug).exists():
            continue
        model = AIModel(
            slug=default.slug,
            display_name=default.display_name,
            task=default.task,
            backend=default.backend,
            config=default.config,
            description=default.description,
            max_output_tokens=default.max_output_tokens,
        )
        model.full_clean()
        model.save()
        created.append(model)
    return created
