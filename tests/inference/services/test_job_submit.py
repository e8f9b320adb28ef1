import base64
import json

import pytest
from django.conf import settings

from inference.errors import Conflict, InvalidInput, ModelDisabled, ModelNotFound
from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from inference.streams import read_events, redis_client

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "hello there"}]}


def test_it_queues_a_valid_job_with_the_models_limits_applied(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.attempt == 1
    assert job.task == "chat"
    assert job.input["max_tokens"] == echo_model.max_output_tokens
    assert job.deadline_at > job.created_at


def _queued_messages(queue: str) -> int:
    return redis_client().llen(f"{settings.REDIS_KEY_PREFIX}:celery:{queue}")


def test_it_sends_the_message_only_after_commit(owner, echo_model, django_capture_on_commit_callbacks):
    before = _queued_messages("default")

    with django_capture_on_commit_callbacks() as callbacks:
        job = job_submit(user=owner, model="echo", input=CHAT)
        assert _queued_messages("default") == before
    for callback in callbacks:
        callback()

    assert _queued_messages("default") == before + 1
    assert [event.data["status"] for event in read_events(job.id)] == ["queued"]
    message = json.loads(redis_client().lindex(f"{settings.REDIS_KEY_PREFIX}:celery:default", 0))
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    # Only ids travel, and monitors show them as Celery would.
    assert (message["headers"]["task"], args, kwargs) == ("inference.tasks.run_job", [str(job.id), 1], {})
    assert (message["headers"]["argsrepr"], message["headers"]["kwargsrepr"]) == (repr([str(job.id), 1]), "{}")


def test_it_seeds_generation_jobs_so_a_retry_regenerates_the_same_text(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)

    assert isinstance(job.input["seed"], int)
    assert job_submit(user=owner, model="echo", input={**CHAT, "seed": 7}).input["seed"] == 7


def test_it_refuses_an_unknown_model_and_stores_nothing(owner, echo_model):
    with pytest.raises(ModelNotFound) as error:
        job_submit(user=owner, model="no-such-model", input=CHAT)

    assert error.value.status == 404
    assert "no-such-model" in error.value.message
    assert not Job.objects.exists()


def test_it_refuses_a_disabled_model(owner, echo_model):
    echo_model.enabled = False
    echo_model.save()

    with pytest.raises(ModelDisabled) as error:
        job_submit(user=owner, model="echo", input=CHAT)

    assert error.value.code == "model_disabled"
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({}, "required", "messages"),
        ({"messages": []}, "too_short", "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "invalid_choice", "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "invalid_type", "messages.0.content"),
        ({**CHAT, "temperature": 3}, "out_of_range", "temperature"),
        ({**CHAT, "temperature": "hot"}, "invalid_type", "temperature"),
        ({**CHAT, "colour": "blue"}, "unknown_field", "colour"),
        ({**CHAT, "max_tokens": 0}, "out_of_range", "max_tokens"),
    ],
)
def test_it_names_the_field_of_malformed_input(owner, echo_model, payload, code, param):
    with pytest.raises(InvalidInput) as error:
        job_submit(user=owner, model="echo", input=payload)

    assert (error.value.code, error.value.param) == (code, param)
    assert error.value.status == 422
    assert not Job.objects.exists()


def test_it_refuses_input_over_the_models_size_limit(owner, echo_model):
    too_long = {"messages": [{"role": "user", "content": "x" * (echo_model.max_input_chars + 1)}]}

    with pytest.raises(InvalidInput) as error:
        job_submit(user=owner, model="echo", input=too_long)

    assert (error.value.code, error.value.status) == ("input_too_large", 413)
    assert not Job.objects.exists()


def test_it_refuses_more_output_tokens_than_the_model_allows(owner, echo_model):
    with pytest.raises(InvalidInput) as error:
        job_submit(user=owner, model="echo", input={**CHAT, "max_tokens": echo_model.max_output_tokens + 1})

    assert (error.value.code, error.value.param) == ("max_tokens_exceeded", "max_tokens")


def test_the_same_idempotency_key_and_input_return_the_first_job(owner, echo_model):
    first = job_submit(user=owner, model="echo", input=CHAT, idempotency_key="k-1")
    again = job_submit(user=owner, model="echo", input=CHAT, idempotency_key="k-1")

    assert again.id == first.id
    assert Job.objects.count() == 1


def test_the_same_idempotency_key_with_other_input_is_a_conflict(owner, echo_model):
    job_submit(user=owner, model="echo", input=CHAT, idempotency_key="k-1")

    with pytest.raises(Conflict) as error:
        job_submit(
            user=owner, model="echo", input={"messages": [{"role": "user", "content": "other"}]}, idempotency_key="k-1"
        )

    assert error.value.code == "idempotency_key_reused"
    assert Job.objects.count() == 1


def test_idempotency_keys_belong_to_their_owner(owner, outsider, echo_model):
    mine = job_submit(user=owner, model="echo", input=CHAT, idempotency_key="shared")
    theirs = job_submit(user=outsider, model="echo", input=CHAT, idempotency_key="shared")

    assert mine.id != theirs.id
