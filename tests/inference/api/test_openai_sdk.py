"""The official `openai` SDK, unchanged, against a real daphne and a real worker."""

from __future__ import annotations

import openai
import pytest

from accounts.models import Plan
from inference.models import AIModel, Job, JobClient, JobStatus
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def sdk(live_server_url, owner_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=owner_key, max_retries=0, timeout=30)


@pytest.fixture
def models(db, echo_model):
    AIModel.objects.create(slug="echo-complete", display_name="Echo completions", task="completion", backend="echo")
    AIModel.objects.create(
        slug="echo-embed", display_name="Echo embeddings", task="embedding", backend="echo", config={"dimensions": 16}
    )
    return echo_model


def test_a_chat_completion_is_a_job_in_the_callers_history(sdk, owner, models, celery_worker):
    completion = sdk.chat.completions.create(
        model="echo", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
    )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 3
    job = Job.objects.get(owner=owner)
    assert completion.id == f"chatcmpl-{job.id.hex}"
    assert (job.client, job.status, job.output_text) == (JobClient.OPENAI, JobStatus.SUCCEEDED, "one two three")


def test_max_tokens_cuts_the_answer_with_finish_reason_length(sdk, models, celery_worker):
    completion = sdk.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=2
    )
    assert completion.choices[0].message.content == "a b"
    assert completion.choices[0].finish_reason == "length"


def test_a_stop_sequence_ends_the_answer_before_it_streamed_or_not(sdk, models, celery_worker):
    messages = [{"role": "user", "content": "one two three four"}]

    completion = sdk.chat.completions.create(model="echo", messages=messages, stop=["three"])
    streamed = sdk.chat.completions.create(model="echo", messages=messages, stop="thr", stream=True)

    assert completion.choices[0].message.content == "one two "
    assert completion.choices[0].finish_reason == "stop"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices) == "one two "


def test_a_streamed_chat_completion_arrives_in_chunks_then_usage(sdk, models, celery_worker):
    echo = AIModel.objects.get(slug="echo")
    echo.config = {"tokens": 120}
    echo.save()

    stream = sdk.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "alpha beta gamma"}],
        max_tokens=120,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.split() == ["alpha", "beta", "gamma"] * 40
    content_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(content_chunks) > 1, "the answer should arrive in several chunks"
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finish == ["length"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 120
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert len({chunk.id for chunk in chunks}) == 1


def test_the_stream_ends_with_done(live_server_url, owner_key, models, celery_worker):
    import httpx

    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST", f"{live_server_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {owner_key}"}
    ) as response:
        lines = [line for line in response.iter_lines() if line]

    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_a_completion_streamed_and_not(sdk, models, celery_worker):
    completion = sdk.completions.create(model="echo-complete", prompt="the cat sat")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "the cat sat"

    streamed = "".join(
        chunk.choices[0].text
        for chunk in sdk.completions.create(model="echo-complete", prompt="on the mat", stream=True)
    )
    assert streamed == "on the mat"


def test_embeddings_as_floats_and_as_the_sdks_default_base64(sdk, models, celery_worker):
    as_floats = sdk.embeddings.create(model="echo-embed", input=["first", "second"], encoding_format="float")
    default = sdk.embeddings.create(model="echo-embed", input=["first", "second"])  # the SDK asks for base64

    assert [item.index for item in as_floats.data] == [0, 1]
    assert len(as_floats.data[0].embedding) == 16
    assert default.data[0].embedding == pytest.approx(as_floats.data[0].embedding, abs=1e-6)
    assert as_floats.data[0].embedding != as_floats.data[1].embedding
    assert as_floats.usage.prompt_tokens == 2


def test_it_lists_and_retrieves_models(sdk, models):
    assert {model.id for model in sdk.models.list()} == {"echo", "echo-complete", "echo-embed"}
    assert sdk.models.retrieve("echo").id == "echo"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")


def test_an_unknown_model_raises_not_found(sdk, models):
    with pytest.raises(openai.NotFoundError) as error:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "model_not_found"


def test_a_bad_key_raises_authentication_error(live_server_url, models):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="djn_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])


def test_a_plan_limit_raises_rate_limit_error_with_retry_after(sdk, owner, models):
    owner.plan = Plan.objects.create(name="tiny", requests_per_minute=1)
    owner.save()
    AIModel.objects.create(slug="idle", display_name="Idle", task="chat", backend="echo", queue="nobody-listens")
    with pytest.raises(openai.APITimeoutError):  # the first call is admitted, and waits on a queue nobody serves
        sdk.with_options(timeout=1).chat.completions.create(model="idle", messages=[{"role": "user", "content": "a"}])
    # The caller hung up, so its job was canceled.
    wait_for(lambda: Job.objects.filter(model__slug="idle", status=JobStatus.CANCELED).exists(), what="cancel")

    with pytest.raises(openai.RateLimitError) as error:
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "b"}])
    assert error.value.code == "rate_limited"
    assert 1 <= int(error.value.response.headers["Retry-After"]) <= 60


def test_invalid_requests_raise_bad_request(sdk, models):
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], n=2)
    assert (error.value.code, error.value.param) == ("unsupported_value", "n")

    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}], temperature=9)
    assert error.value.param == "temperature"

    with pytest.raises(openai.BadRequestError) as error:
        sdk.completions.create(model="echo", prompt="hi")
    assert error.value.code == "model_task_mismatch"
    assert error.value.body["message"] == (
        "The model 'echo' is for chat, not completion: call it at /v1/chat/completions."
    )


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("call", "code", "param", "reason"),
    [
        ({"messages": HI, "n": 2}, "unsupported_value", "n", "Djinn returns one choice per request: n must be 1."),
        (
            {"messages": HI, "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]},
            "unknown_field",
            "tools",
            "Djinn's models do not call tools or functions.",
        ),
        ({"messages": HI, "logprobs": True}, "unsupported_value", "logprobs", "Log probabilities are not available"),
        (
            {"messages": HI, "response_format": {"type": "json_object"}},
            "unsupported_value",
            "response_format.type",
            "Only the text response format is supported.",
        ),
        ({"messages": HI, "extra_body": {"frobnicate": 1}}, "unknown_field", "frobnicate", "Unknown field."),
        ({"messages": [{"role": "user"}]}, "required", "messages.0.content", "This field is required."),
        ({"messages": []}, "invalid_value", "messages", "Give at least 1 item, not 0."),
        ({"messages": HI, "stop": ["a", "b", "c", "d", "e"]}, "invalid_value", "stop", "Give at most 4 items, not 5."),
        ({"messages": HI, "temperature": 5}, "invalid_value", "temperature", "Give a number no greater than 2, not 5."),
        ({"messages": HI, "max_tokens": 0}, "invalid_value", "max_tokens", "Give a number no less than 1, not 0."),
        ({"prompt": "hi", "logprobs": 2}, "invalid_value", "logprobs", "Log probabilities are not available"),
        (
            {"prompt": "hi", "best_of": 3},
            "unsupported_value",
            "best_of",
            "Djinn returns one choice per request: best_of must be 1.",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
                ]
            },
            "unsupported_value",
            "messages.0.content.0.type",
            "Only text parts are supported: Djinn's models do not read images, audio or files.",
        ),
        (
            {"messages": [{"role": "tool", "content": "42", "tool_call_id": "call_1"}]},
            "unsupported_value",
            "messages.0.role",
            "Djinn's models do not call tools or functions.",
        ),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "unsupported_value", "messages.0.role", "Input should be"),
        ({"prompt": [1, 2, 3]}, "invalid_value", "prompt", "Send text: token ids are not supported."),
        ({"prompt": [7]}, "invalid_type", "prompt.0", "Send text: token ids are not supported."),
        ({"input": [[1, 2], [3]]}, "invalid_type", "input.0", "Send text: token ids are not supported."),
        ({"input": [1, 2, 3]}, "invalid_type", "input.0", "Send text: token ids are not supported."),
        ({"input": ["a", None]}, "invalid_type", "input.1", "Input should be a valid string"),
        (
            {"input": "a", "dimensions": 8},
            "unknown_field",
            "dimensions",
            "Each model returns its embeddings whole: leave dimensions out.",
        ),
    ],
)
def test_what_djinn_cannot_honour_or_read_is_refused_saying_why(sdk, models, call, code, param, reason):
    create, model = {
        "messages": (sdk.chat.completions.create, "echo"),
        "prompt": (sdk.completions.create, "echo-complete"),
        "input": (sdk.embeddings.create, "echo-embed"),
    }[next(field for field in ("messages", "prompt", "input") if field in call)]
    with pytest.raises(openai.BadRequestError) as error:
        create(model=model, **call)
    assert (error.value.code, error.value.param) == (code, param)
    assert error.value.body["message"].startswith(f"{param}: {reason}")
    assert not Job.objects.exists()  # refused before anything was made
