"""Fixtures for the model backends: the default models as `make run` registers them,
a tiny GPT-2 built on disk, a local OpenAI-compatible server, and job helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.inference.backends.fake_openai_server import FakeOpenAIServer
from tests.support.processes import wait_for


def register_default(slug: str):
    """Register one of the registry's default models exactly as `make run` does."""
    from inference.models import AIModel
    from inference.services.registry import DEFAULT_MODELS

    default = next(model for model in DEFAULT_MODELS if model.slug == slug)
    model = AIModel(
        slug=default.slug,
        display_name=default.display_name,
        task=default.task,
        backend=default.backend,
        config=default.config,
        default_params=default.default_params,
        max_input_chars=default.max_input_chars,
        max_output_tokens=default.max_output_tokens,
    )
    model.full_clean()
    model.save()
    return model


@pytest.fixture
def smollm2(db):
    return register_default("smollm2-135m")


@pytest.fixture
def minilm(db):
    return register_default("minilm-l6")


@pytest.fixture
def zero_shot(db):
    return register_default("minilm-zero-shot")


def finished(job, timeout: float = 120):
    """The job once it has finished, as stored."""

    def done():
        job.refresh_from_db()
        return job.is_finished

    wait_for(done, timeout=timeout, what=f"job {job.id} to finish")
    return job


def watcher_text(job) -> str:
    """The answer a watcher of the job's event log ends up showing (a retry may restart it)."""
    from inference import streams
    from inference.services.events import visible_text

    return visible_text(streams.read_events(job.id))


def chat(text: str, **params) -> dict:
    return {"messages": [{"role": "user", "content": text}], **params}


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A two-layer GPT-2 with random weights and a byte-level BPE tokenizer trained here, saved as
    a Hugging Face model directory: what an operator would point the transformers backend at."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    directory = tmp_path_factory.mktemp("tiny-gpt2")
    corpus = [
        "the quick brown fox jumps over the lazy dog",
        "models stream their answers one token at a time",
        "hello world, hello djinn",
        "café, naïve, déjà vu",
    ] * 10
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=320, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    # No end-of-text id: random weights could end an answer anywhere, and tests count tokens.
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=4096,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=None,
        eos_token_id=None,
    )
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@pytest.fixture
def openai_server():
    server = FakeOpenAIServer().start()
    yield server
    server.stop()
