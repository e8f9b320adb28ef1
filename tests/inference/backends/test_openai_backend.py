"""The openai backend against a small local server that speaks the protocol (127.0.0.1 only)."""

import threading
import time

import pytest

from inference import streams
from inference.backends import BackendError, build_backend
from inference.models import AIModel, JobStatus
from inference.services.jobs import job_submit
from tests.inference.backends.conftest import chat, finished, watcher_text
from tests.inference.backends.fake_openai_server import API_KEY, Failure

pytestmark = [pytest.mark.django_db(transaction=True)]


def _register(slug: str, task: str, config: dict) -> AIModel:
    model = AIModel(slug=slug, display_name=slug, task=task, backend="openai", config=config)
    model.full_clean()
    model.save()
    return model


def _config(server, **overrides) -> dict:
    return {"base_url": server.base_url, "model": "remote-llm", "api_key": API_KEY, "retry_backoff": 0.01, **overrides}


def _deltas(job) -> list[str]:
    return [event.data["text"] for event in streams.read_events(job.id) if event.type == "delta"]


@pytest.mark.worker
def test_a_remote_chat_model_streams_through_a_worker(celery_worker, owner, openai_server):
    _register("remote-chat", "chat", _config(openai_server))

    job = finished(
        job_submit(user=owner, model="remote-chat", input=chat("hi", temperature=0.3, top_p=0.5, stop=["zzz"]))
    )

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_text == "Hello from a remote model!"
    assert job.completion_tokens == 6
    assert len(_deltas(job)) > 1, "chunks are passed on as they arrive"
    assert watcher_text(job) == job.output_text
    body = openai_server.requests[-1]["body"]
    assert body["model"] == "remote-llm"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.3, 0.5, ["zzz"])
    assert body["seed"] == job.input["seed"]
    assert body["max_tokens"] == job.input["max_tokens"]


@pytest.mark.worker
def test_a_token_held_for_coalescing_goes_out_on_time_when_the_remote_model_stalls(celery_worker, owner, openai_server):
    openai_server.words = ["one", " two", " three"]
    openai_server.chunk_delay = 0.001  # "one" and " two" arrive together: " two" is held to be coalesced
    openai_server.pauses = {2: 2.0}  # then the model stalls before " three"
    _register("remote-stalling", "chat", _config(openai_server))

    job = job_submit(user=owner, model="remote-stalling", input=chat("hi"))
    arrivals, after = [], 0
    while not arrivals or "three" not in arrivals[-1][1]:
        for event in streams.wait_events(job.id, after=after, timeout_ms=5000):
            after = event.seq
            if event.type == "delta":
                arrivals.append((time.monotonic(), event.data["text"]))

    seen_before_stall = "".join(text for at, text in arrivals if at < arrivals[-1][0] - 1.0)
    assert seen_before_stall == "one two", arrivals
    assert finished(job).output_text == "one two three"


@pytest.mark.worker
def test_a_remote_completion_honours_max_tokens(celery_worker, owner, openai_server):
    _register("remote-text", "completion", _config(openai_server))

    job = finished(job_submit(user=owner, model="remote-text", input={"prompt": "Say hello", "max_tokens": 3}))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_text == "Hello from a"
    assert openai_server.requests[-1]["path"] == "/v1/completions"


@pytest.mark.worker
def test_remote_embeddings_come_back_in_input_order(celery_worker, owner, openai_server):
    _register("remote-embed", "embedding", _config(openai_server, embedding_batch_size=2))
    texts = ["one", "two", "three", "four", "five"]

    job = finished(job_submit(user=owner, model="remote-embed", input={"input": texts, "normalize": False}))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_json["dimensions"] == 16
    assert job.output_json["embeddings"] == [openai_server.vector_for(text) for text in texts]
    assert [len(request["body"]["input"]) for request in openai_server.requests] == [2, 2, 1]


@pytest.mark.worker
def test_a_wrong_key_fails_the_job_with_upstream_auth_failed(celery_worker, owner, openai_server):
    _register("remote-badkey", "chat", _config(openai_server, api_key="sk-wrong"))

    job = finished(job_submit(user=owner, model="remote-badkey", input=chat("hi")))

    assert (job.status, job.error_code) == (JobStatus.FAILED, "upstream_auth_failed")
    assert "sk-wrong" not in job.error_message
    assert len(openai_server.requests) == 1, "a refused key is not retried"


@pytest.mark.worker
def test_a_nul_character_from_a_model_is_stored_as_a_replacement_character(celery_worker, owner, openai_server):
    openai_server.words = ["bad", "\u0000", "byte"]
    _register("remote-nul", "chat", _config(openai_server))

    job = finished(job_submit(user=owner, model="remote-nul", input=chat("hi")))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_text == "bad\ufffdbyte"
    assert watcher_text(job) == job.output_text


# The backend on its own against the server: error mapping, retries, timeouts.


def _backend(server, **overrides):
    backend = build_backend("openai", _config(server, **overrides))
    backend.load()
    return backend


def test_a_server_error_before_the_first_token_is_retried(openai_server):
    openai_server.failures.extend([Failure(status=503), Failure(status=502)])
    backend = _backend(openai_server)

    text = "".join(backend.stream(chat("hi"), lambda: False))

    assert text == "Hello from a remote model!"
    assert len(openai_server.requests) == 3


def test_rate_limiting_is_retried_then_reported(openai_server):
    openai_server.failures.extend([Failure(status=429, retry_after="0")] * 3)
    backend = _backend(openai_server, max_retries=2)

    with pytest.raises(BackendError) as error:
        list(backend.stream(chat("hi"), lambda: False))

    assert error.value.code == "upstream_rate_limited"
    assert len(openai_server.requests) == 3


def test_a_bad_request_is_not_retried(openai_server):
    openai_server.failures.append(Failure(status=400))
    backend = _backend(openai_server)

    with pytest.raises(BackendError) as error:
        list(backend.stream(chat("hi"), lambda: False))

    assert error.value.code == "upstream_bad_request"
    assert "scripted failure 400" in error.value.message
    assert len(openai_server.requests) == 1


def test_a_stream_cut_after_the_first_token_fails_without_a_retry(openai_server):
    openai_server.failures.append(Failure(drop_after_tokens=2))
    backend = _backend(openai_server)
    stream = backend.stream(chat("hi"), lambda: False)
    received = [next(stream), next(stream)]

    with pytest.raises(BackendError) as error:
        next(stream)

    assert received == ["Hello", " from"]
    assert error.value.code == "upstream_unavailable"
    assert len(openai_server.requests) == 1, "a retry would repeat text the user has already seen"


def test_a_stream_cut_before_the_first_token_is_retried(openai_server):
    openai_server.failures.append(Failure(drop_after_tokens=0))
    backend = _backend(openai_server)

    text = "".join(backend.stream(chat("hi"), lambda: False))

    assert text == "Hello from a remote model!"
    assert len(openai_server.requests) == 2


def test_a_stalled_server_times_out(openai_server):
    openai_server.failures.extend([Failure(stall_seconds=1.5)] * 2)
    backend = _backend(openai_server, read_timeout=0.3, max_retries=1)

    started = time.monotonic()
    with pytest.raises(BackendError) as error:
        list(backend.stream(chat("hi"), lambda: False))

    assert error.value.code == "upstream_timeout"
    assert time.monotonic() - started < 1.5


def test_an_unreachable_server_is_unavailable(openai_server):
    backend = build_backend("openai", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "retry_backoff": 0})
    backend.load()

    with pytest.raises(BackendError) as error:
        list(backend.stream(chat("hi"), lambda: False))

    assert error.value.code == "upstream_unavailable"


def test_the_key_can_come_from_an_environment_variable(openai_server, monkeypatch):
    monkeypatch.setenv("DJINN_TEST_REMOTE_KEY", API_KEY)
    backend = build_backend(
        "openai", {"base_url": openai_server.base_url, "model": "m", "api_key_env": "DJINN_TEST_REMOTE_KEY"}
    )
    backend.load()

    assert "".join(backend.stream(chat("hi"), lambda: False)) == "Hello from a remote model!"
    assert openai_server.requests[-1]["authorization"] == f"Bearer {API_KEY}"


def test_a_missing_key_variable_makes_the_model_unavailable(monkeypatch):
    monkeypatch.delenv("DJINN_TEST_MISSING_KEY", raising=False)
    backend = build_backend(
        "openai", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "DJINN_TEST_MISSING_KEY"}
    )

    with pytest.raises(BackendError) as error:
        backend.load()

    assert error.value.code == "model_unavailable"
    assert "DJINN_TEST_MISSING_KEY" in error.value.message


def test_should_stop_closes_the_stream_between_chunks(openai_server):
    openai_server.words = [f" w{i}" for i in range(200)]
    openai_server.chunk_delay = 0.005
    backend = _backend(openai_server)
    stop = threading.Event()
    received = []

    for token in backend.stream(chat("hi"), stop.is_set):
        received.append(token)
        if len(received) == 5:
            stop.set()

    assert len(received) == 5
