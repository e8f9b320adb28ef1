"""Precompiled lookups give what the plain querysets give: the same rows, fields and related objects."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey, Plan
from accounts.services import api_key_create
from inference.models import AIModel
from inference.precompiled import PrecompiledLookup

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_key_comes_with_its_user_and_plan_in_one_query_as_the_orm_gives_them(django_user_model):
    plan = Plan.objects.create(name="team", concurrent_jobs=3, requests_per_minute=60)
    with_plan = api_key_create(user=django_user_model.objects.create(username="planned", plan=plan), name="a")
    without_plan = api_key_create(user=django_user_model.objects.create(username="default"), name="b")
    lookup = PrecompiledLookup(lambda prefix: ApiKey.objects.select_related("user__plan").filter(prefix=prefix))

    for created in (with_plan, without_plan):
        expected = ApiKey.objects.select_related("user__plan").get(prefix=created.api_key.prefix)
        with CaptureQueriesContext(connection) as queries:
            found = lookup(created.api_key.prefix)
            user, user_plan = found.user, found.user.plan
        assert len(queries) == 1
        assert _fields(found) == _fields(expected)
        assert _fields(user) == _fields(expected.user)
        assert (user_plan and _fields(user_plan)) == (expected.user.plan and _fields(expected.user.plan))
    assert lookup("nosuchprefix") is None


@pytest.mark.django_db(transaction=True)  # the other threads read through their own connections
def test_a_model_lookup_decodes_json_fields_and_works_on_every_thread():
    AIModel.objects.create(
        slug="tiny", display_name="Tiny", task="chat", backend="echo", config={"tokens": 3}, default_params={"seed": 1}
    )
    lookup = PrecompiledLookup(lambda slug: AIModel.objects.filter(slug=slug))

    found = lookup("tiny")
    assert model_to_dict(found) == model_to_dict(AIModel.objects.get(slug="tiny"))
    assert found.config == {"tokens": 3}

    def on_a_thread(slug: str) -> str | None:
        try:
            model = lookup(slug)
            return model and model.slug
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as threads:  # compiled once per thread, each on its own connection
        assert list(threads.map(on_a_thread, ["tiny", "none", "tiny"])) == ["tiny", None, "tiny"]


def test_a_job_comes_with_its_model_and_its_webhook_or_none_as_the_orm_gives_them(owner, echo_model, settings):
    from inference.models import Job
    from inference.selectors import job_get_to_run
    from inference.services.admission import job_create
    from webhooks.services import WebhookRequest

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]  # the receiver need not exist: nothing is sent here
    plain = job_create(user=owner, model="echo", input={"messages": [{"role": "user", "content": "a"}]})
    hooked = job_create(
        user=owner,
        model="echo",
        input={"messages": [{"role": "user", "content": "b"}]},
        webhook=WebhookRequest(url="http://127.0.0.1:9/hook", events=("completed",)),
    )

    for job in (plain, hooked):
        expected = Job.objects.select_related("model", "webhook").get(id=job.id)
        with CaptureQueriesContext(connection) as queries:
            found = job_get_to_run(job_id=str(job.id))
            has_webhook, model = hasattr(found, "webhook"), found.model
            webhook_fields = has_webhook and _fields(found.webhook)
        assert len(queries) == 1
        assert _fields(found) == _fields(expected)
        assert _fields(model) == _fields(expected.model)
        assert has_webhook == hasattr(expected, "webhook")
        assert webhook_fields == (hasattr(expected, "webhook") and _fields(expected.webhook))
    assert (
        hasattr(job_get_to_run(job_id=plain.id), "webhook"),
        hasattr(job_get_to_run(job_id=hooked.id), "webhook"),
    ) == (
        False,
        True,
    )
    assert job_get_to_run(job_id="00000000-0000-4000-8000-000000000000") is None


def test_a_users_job_is_found_with_its_model_and_anyone_elses_looks_missing(owner, outsider, echo_model):
    from inference.errors import NotFound
    from inference.models import Job
    from inference.selectors import job_get_for_user
    from inference.services.admission import job_create

    job = job_create(user=owner, model="echo", input={"messages": [{"role": "user", "content": "mine"}]})

    with CaptureQueriesContext(connection) as queries:
        found = job_get_for_user(user=owner, job_id=str(job.id))
        model = found.model
    assert len(queries) == 1
    expected = Job.objects.select_related("model").get(id=job.id)
    assert (_fields(found), _fields(model)) == (_fields(expected), _fields(expected.model))
    for user, job_id in ((outsider, job.id), (owner, "00000000-0000-4000-8000-000000000000"), (owner, "nope")):
        with pytest.raises(NotFound):
            job_get_for_user(user=user, job_id=job_id)
