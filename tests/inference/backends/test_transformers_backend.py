"""The transformers backend on a tiny GPT-2 built in a temporary directory, end to end."""

import pytest

from inference import streams
from inference.backends import BackendError, build_backend
from inference.models import AIModel, JobStatus
from inference.services.jobs import job_cancel, job_submit
from tests.inference.backends.conftest import chat, finished, watcher_text
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def tiny_gpt2(db, tiny_gpt2_dir):
    model = AIModel(
        slug="tiny-gpt2",
        display_name="Tiny GPT-2",
        task="completion",
        backend="transformers",
        config={"path": str(tiny_gpt2_dir)},
        max_output_tokens=4000,
    )
    model.full_clean()
    model.save()
    return model


def _deltas(job) -> list[str]:
    return [event.data["text"] for event in streams.read_events(job.id) if event.type == "delta"]


def test_a_local_hugging_face_model_streams_a_completion(celery_worker, owner, tiny_gpt2):
    job = finished(job_submit(user=owner, model="tiny-gpt2", input={"prompt": "the quick brown", "max_tokens": 40}))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.completion_tokens == 40, "one item per generated token, and the model has no end-of-text"
    assert watcher_text(job) == job.output_text
    assert job.prompt_tokens > 0


def test_the_same_seed_samples_the_same_text(celery_worker, owner, tiny_gpt2):
    prompt = {"prompt": "hello", "max_tokens": 20, "temperature": 1.0, "seed": 99}

    first = finished(job_submit(user=owner, model="tiny-gpt2", input=prompt))
    second = finished(job_submit(user=owner, model="tiny-gpt2", input=prompt))

    assert first.status == second.status == JobStatus.SUCCEEDED
    assert first.output_text == second.output_text


def test_a_chat_model_without_a_template_gets_plain_role_lines(tiny_gpt2_dir):
    backend = build_backend("transformers", {"path": str(tiny_gpt2_dir)})
    backend.load()

    prompt = backend.prompt_text(chat("hi there"))

    assert prompt == "user: hi there\nassistant:"


def test_cancel_ends_generation_early(celery_worker, owner, tiny_gpt2):
    job = job_submit(user=owner, model="tiny-gpt2", input={"prompt": "the lazy dog", "max_tokens": 4000})
    wait_for(lambda: _deltas(job), timeout=60, what="the first delta")

    job_cancel(job=job)
    job = finished(job)

    assert job.status == JobStatus.CANCELED
    assert 0 < job.completion_tokens < 4000
    assert watcher_text(job) == job.output_text


def test_should_stop_halts_the_generation_thread(tiny_gpt2_dir):
    backend = build_backend("transformers", {"path": str(tiny_gpt2_dir)})
    backend.load()
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 4

    tokens = list(backend.stream({"prompt": "hello", "max_tokens": 200}, should_stop))

    assert len(tokens) == 4
    # The lock is free again: the generation thread ended instead of running on to 200 tokens.
    assert len(list(backend.stream({"prompt": "hello", "max_tokens": 3}, lambda: False))) == 3


def test_a_stop_sequence_cuts_the_answer(tiny_gpt2_dir):
    backend = build_backend("transformers", {"path": str(tiny_gpt2_dir)})
    backend.load()
    job_input = {"prompt": "the quick", "max_tokens": 30, "temperature": 0}
    full = "".join(backend.stream(job_input, lambda: False))
    stop = full[10:13]
    assert stop.strip(), full

    cut = "".join(backend.stream({**job_input, "stop": stop}, lambda: False))

    assert cut == full[: full.index(stop)]


def test_a_prompt_longer_than_the_context_is_refused(tiny_gpt2_dir):
    backend = build_backend("transformers", {"path": str(tiny_gpt2_dir)})
    backend.load()

    with pytest.raises(BackendError) as error:
        list(backend.stream({"prompt": "the quick brown fox " * 1500, "max_tokens": 5}, lambda: False))

    assert error.value.code == "context_length_exceeded"
