"""Every task's input is checked against its schema before a job exists: the field path, a stable
code, and nothing stored. (Chat has more cases in tests/inference/services/test_job_submit.py.)"""

import pytest

from inference.errors import InvalidInput
from inference.models import AIModel, Job
from inference.services.jobs import job_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(db):
    for slug, task in [
        ("chat-m", "chat"),
        ("text-m", "completion"),
        ("embed-m", "embedding"),
        ("cls-m", "classification"),
    ]:
        AIModel.objects.create(slug=slug, display_name=slug, task=task, backend="echo", max_input_chars=500)


@pytest.mark.parametrize(
    ("model", "payload", "code", "param"),
    [
        ("chat-m", {"messages": [{"role": "user"}]}, "required", "messages.0.content"),
        ("chat-m", {"messages": [{"role": "system", "content": "be brief"}]}, "invalid_value", "messages"),
        ("chat-m", {"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, "out_of_range", "top_p"),
        (
            "chat-m",
            {"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]},
            "too_long",
            "stop",
        ),
        ("chat-m", {"messages": [{"role": "user", "content": "hi"}], "seed": -1}, "out_of_range", "seed"),
        ("text-m", {}, "required", "prompt"),
        ("text-m", {"prompt": ""}, "too_short", "prompt"),
        ("text-m", {"prompt": ["a", "list"]}, "invalid_type", "prompt"),
        ("text-m", {"prompt": "hi", "max_tokens": 1.5}, "invalid_type", "max_tokens"),
        ("embed-m", {}, "required", "input"),
        ("embed-m", {"input": ""}, "too_short", "input"),
        ("embed-m", {"input": []}, "too_short", "input"),
        ("embed-m", {"input": ["fine", ""]}, "too_short", "input.1"),
        ("embed-m", {"input": ["fine", 3]}, "invalid_type", "input.1"),
        ("embed-m", {"input": ["x"] * 257}, "too_long", "input"),
        ("embed-m", {"input": "hi", "normalize": "yes"}, "invalid_type", "normalize"),
        ("embed-m", {"input": "hi", "dimensions": 8}, "unknown_field", "dimensions"),
        ("cls-m", {"input": "hi"}, "required", "labels"),
        ("cls-m", {"input": "hi", "labels": ["only one"]}, "too_short", "labels"),
        ("cls-m", {"input": "hi", "labels": ["a", ""]}, "too_short", "labels.1"),
        ("cls-m", {"input": "hi", "labels": ["a", "a"]}, "invalid_value", "labels"),
        ("cls-m", {"input": "hi", "labels": "a,b"}, "invalid_type", "labels"),
        ("cls-m", {"input": "hi", "labels": ["a", "b"], "multi_label": 1}, "invalid_type", "multi_label"),
        ("cls-m", {"input": "hi", "labels": ["a", "b"], "threshold": 0.5}, "unknown_field", "threshold"),
        ("chat-m", {"messages": [{"role": "user", "content": "a\u0000b"}]}, "invalid_value", "messages.0.content"),
        ("text-m", {"prompt": "a\u0000"}, "invalid_value", "prompt"),
        ("text-m", {"prompt": "hi", "stop": ["\u0000"]}, "invalid_value", "stop.0"),
        ("embed-m", {"input": ["fine", "nul\u0000"]}, "invalid_value", "input.1"),
        ("cls-m", {"input": "hi", "labels": ["a", "b\u0000"]}, "invalid_value", "labels.1"),
    ],
)
def test_malformed_input_is_refused_with_its_field_path_and_no_job(owner, models, model, payload, code, param):
    with pytest.raises(InvalidInput) as error:
        job_submit(user=owner, model=model, input=payload)

    if code is not None:
        assert error.value.code == code, error.value.message
    assert error.value.param == param, error.value.message
    assert error.value.status == 422
    assert not Job.objects.exists()


def test_input_over_the_size_limit_is_refused_for_every_task(owner, models):
    big = "x" * 501
    payloads = {
        "chat-m": {"messages": [{"role": "user", "content": big}]},
        "text-m": {"prompt": big},
        "embed-m": {"input": [big[:300], big[:300]]},
        "cls-m": {"input": big[:400], "labels": ["a" * 60, "b" * 60]},
    }

    for model, payload in payloads.items():
        with pytest.raises(InvalidInput) as error:
            job_submit(user=owner, model=model, input=payload)
        assert (error.value.code, error.value.status) == ("input_too_large", 413), model

    assert not Job.objects.exists()


def test_generation_parameters_are_refused_where_they_mean_nothing(owner, models):
    with pytest.raises(InvalidInput) as error:
        job_submit(user=owner, model="embed-m", input={"input": "hi", "temperature": 0.5})

    assert (error.value.code, error.value.param) == ("unknown_field", "temperature")
