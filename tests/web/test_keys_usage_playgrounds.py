import pytest
from django.urls import reverse

from accounts.models import ApiKey
from inference.models import AIModel, Job

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once(owner_client, owner):
    response = owner_client.post(reverse("keys"), {"name": "laptop"})
    api_key = ApiKey.objects.get(user=owner)
    assert f"djn_{api_key.prefix}_" in response.text
    assert "only time it is shown" in response.text
    assert response["Cache-Control"] == "no-store"
    again = owner_client.get(reverse("keys")).text
    assert "laptop" in again
    assert response.text.count(f"djn_{api_key.prefix}_") == 2  # the secret field and the list row
    assert "only time it is shown" not in again
    # Where to use it: the API reference, and the base URL the OpenAI SDKs take.
    assert 'href="/api/docs/"' in again
    assert 'base_url="http://testserver/v1"' in again


def test_revoking_a_key(owner_client, owner, outsider):
    from accounts.services import api_key_create

    mine = api_key_create(user=owner, name="mine").api_key
    theirs = api_key_create(user=outsider, name="theirs").api_key
    assert owner_client.post(reverse("key-revoke", args=[theirs.pk])).status_code == 404
    owner_client.post(reverse("key-revoke", args=[mine.pk]))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None
    assert theirs.revoked_at is None


def test_usage_shows_the_days_and_the_quota(owner_client, owner, echo_model):
    from accounts.models import Plan
    from inference.services.jobs import job_submit

    owner.plan = Plan.objects.create(name="starter", tokens_per_day=100_000)
    owner.save()
    job = job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "count"}]})
    Job.objects.filter(id=job.id).update(status="succeeded", prompt_tokens=1_234, completion_tokens=11_111)

    page = owner_client.get(reverse("usage")).text
    assert "Tokens per day" in page
    assert "quota 100,000" in page  # counts read with thousands separators
    assert '<p class="big">12,345</p>' in page
    assert "87,655 left" in page
    assert page.count('class="bar-col"') == 14
    assert "1,234 prompt + 11,111 completion = 12,345" in owner_client.get(reverse("job", args=[job.id])).text


@pytest.fixture
def embedder(db):
    return AIModel.objects.create(slug="emb", display_name="Emb", task="embedding", backend="echo")


def test_the_embeddings_playground_submits_a_job(owner_client, owner, embedder):
    response = owner_client.post(reverse("playground-embeddings"), {"model": "emb", "first": "a", "second": "b"})
    assert response.status_code == 202
    job = Job.objects.get(owner=owner)
    assert job.input["input"] == ["a", "b"]
    assert job.client == "web"
    assert response.json()["poll"] == reverse("job-json", args=[job.id])
    assert owner_client.get(response.json()["poll"]).json()["status"] == "queued"


def test_the_classification_playground_needs_two_labels(owner_client, db):
    AIModel.objects.create(slug="cls", display_name="Cls", task="classification", backend="echo")
    response = owner_client.post(reverse("playground-classification"), {"model": "cls", "text": "hi", "labels": "one"})
    assert response.status_code == 400
    assert response.json()["fields"]["labels"] == ["Give at least two labels, separated by commas."]


def test_a_playground_refused_by_a_quota_says_when_to_try_again(owner_client, owner, embedder):
    from accounts.models import Plan

    owner.plan = Plan.objects.create(name="one at a time", concurrent_jobs=1)
    owner.save()
    body = {"model": "emb", "first": "a", "second": "b"}
    assert owner_client.post(reverse("playground-embeddings"), body).status_code == 202

    refused = owner_client.post(reverse("playground-embeddings"), body)

    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert "Try again in 1 second" in refused.json()["error"]
