"""Errors written for operators (server paths, upstream replies) reach only staff; users read a plain sentence."""

import pytest
from django.urls import reverse

from inference.job_errors import UNAVAILABLE_MESSAGE
from inference.models import Job
from web.models import Conversation

pytestmark = pytest.mark.django_db

SERVER_DETAIL = "The model file '/srv/models/secret/smollm2.gguf' does not exist."


@pytest.fixture
def broken_job(owner_client, owner, echo_model):
    owner_client.post(reverse("chat"), {"content": "hello", "model": "echo"})
    job = Job.objects.get(owner=owner)
    Job.objects.filter(id=job.id).update(status="failed", error_code="model_unavailable", error_message=SERVER_DETAIL)
    return job


def test_the_owner_sees_a_plain_sentence_instead_of_a_server_path(owner_client, owner, broken_job):
    conversation = Conversation.objects.get(owner=owner)

    for url in (reverse("job", args=[broken_job.id]), reverse("conversation", args=[conversation.id])):
        page = owner_client.get(url).text
        assert "/srv/models" not in page
        assert UNAVAILABLE_MESSAGE.split(";")[0] in page
    error = owner_client.get(reverse("job-json", args=[broken_job.id])).json()["error"]
    assert error == {"code": "model_unavailable", "message": UNAVAILABLE_MESSAGE}


def test_staff_see_the_stored_error_as_it_is(client, owner, broken_job):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    client.force_login(owner)

    assert "/srv/models/secret/smollm2.gguf" in client.get(reverse("job", args=[broken_job.id])).text
    assert client.get(reverse("job-json", args=[broken_job.id])).json()["error"]["message"] == SERVER_DETAIL


def test_errors_meant_for_users_are_shown_as_they_are(owner_client, broken_job):
    message = "Your input is longer than this model reads."
    Job.objects.filter(id=broken_job.id).update(error_code="invalid_input", error_message=message)

    assert message in owner_client.get(reverse("job", args=[broken_job.id])).text
