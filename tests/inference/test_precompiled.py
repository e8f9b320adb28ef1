"""Precompiled lookups and updates do what the plain querysets do: the same rows, fields and related objects."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey, Plan
from accounts.services import api_key_create
from inference.models import AIModel, Job, JobStatus
from inference.precompiled import PrecompiledLookup, PrecompiledUpdate
from inference.services.jobs import _claim, _claim_and_load, _mark_first_token, _store_result, job_submit

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

    def on_a_thread(slug: str) -> tuple[str | None, object]:
        try:
            model = lookup(slug)
            return model and model.slug, lookup._compiled()
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as threads:  # compiled once for all threads, each reading on its own connection
        found_on_threads = list(threads.map(on_a_thread, ["tiny", "none", "tiny"]))
    assert [slug for slug, _ in found_on_threads] == ["tiny", None, "tiny"]
    assert {id(compiled) for _, compiled in found_on_threads} == {id(lookup._compiled())}


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


def _queued_job(owner, model, **fields):
    job = job_submit(user=owner, model=model, input={"messages": [{"role": "user", "content": "claim me"}]})
    Job.objects.filter(id=job.id).update(**fields)
    return Job.objects.get(id=job.id)


def test_the_claim_changes_what_the_orm_update_changes_in_one_query(owner, echo_model):
    by_orm, precompiled = _queued_job(owner, echo_model), _queued_job(owner, echo_model)
    now = timezone.now()

    Job.objects.filter(
        id=by_orm.id, status=JobStatus.QUEUED, attempt=1, deadline_at__gt=now, cancel_requested_at__isnull=True
    ).update(
        status=JobStatus.RUNNING, heartbeat_at=now, worker="w@host", started_at=Coalesce(F("started_at"), Value(now))
    )
    with CaptureQueriesContext(connection) as queries:
        claimed = _claim(job_id=precompiled.id, attempt=1, now=now, worker="w@host")

    assert (claimed, len(queries)) == (1, 1)
    own = {"id", "input", "created_at", "deadline_at", "enqueued_at", "request_fingerprint"}  # set at submit
    expected = {k: v for k, v in _fields(Job.objects.get(id=by_orm.id)).items() if k not in own}
    assert {k: v for k, v in _fields(Job.objects.get(id=precompiled.id)).items() if k not in own} == expected
    assert Job.objects.get(id=precompiled.id).started_at == now


def test_the_claim_takes_only_a_queued_attempt_in_time_and_never_twice(owner, echo_model):
    now = timezone.now()
    late = _queued_job(owner, echo_model, deadline_at=now - timedelta(seconds=1))
    cancel_asked = _queued_job(owner, echo_model, cancel_requested_at=now)
    started_before = now - timedelta(minutes=3)
    retried = _queued_job(owner, echo_model, attempt=2, started_at=started_before)

    assert _claim(job_id=late.id, attempt=1, now=now, worker="w") == 0
    assert _claim(job_id=cancel_asked.id, attempt=1, now=now, worker="w") == 0
    assert _claim(job_id=retried.id, attempt=1, now=now, worker="w") == 0  # a superseded attempt's message
    assert _claim(job_id=retried.id, attempt=2, now=now, worker="w") == 1
    assert _claim(job_id=retried.id, attempt=2, now=now, worker="w") == 0
    assert Job.objects.get(id=retried.id).started_at == started_before  # the first attempt's start counts
    assert Job.objects.filter(status=JobStatus.RUNNING).count() == 1


def test_claiming_and_loading_is_one_query_that_gives_the_job_as_claimed_with_its_model_and_webhook(
    owner, echo_model, settings
):
    from inference.selectors import job_get_to_run
    from inference.services.admission import job_create
    from webhooks.services import WebhookRequest

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]  # the receiver need not exist: nothing is sent here
    plain = _queued_job(owner, echo_model)
    hooked = job_create(
        user=owner,
        model="echo",
        input={"messages": [{"role": "user", "content": "b"}]},
        webhook=WebhookRequest(url="http://127.0.0.1:9/hook", events=("completed",)),
    )
    now = timezone.now()

    for job in (plain, hooked):
        with CaptureQueriesContext(connection) as queries:
            claimed = _claim_and_load(job_id=job.id, attempt=1, now=now, worker="w@host")
            has_webhook, model = hasattr(claimed, "webhook"), claimed.model
        expected = job_get_to_run(job_id=job.id)
        assert len(queries) == 1
        assert (claimed.status, claimed.worker, claimed.heartbeat_at) == (JobStatus.RUNNING, "w@host", now)
        assert _fields(claimed) == _fields(expected)
        assert _fields(model) == _fields(expected.model)
        assert has_webhook == hasattr(expected, "webhook")
    assert (
        hasattr(_claim_and_load(job_id=_queued_job(owner, echo_model).id, attempt=1, now=now, worker="w"), "webhook")
        is False
    )

    # Nothing to claim: nothing loaded, nothing changed.
    assert _claim_and_load(job_id=plain.id, attempt=1, now=now, worker="other") is None
    assert Job.objects.get(id=plain.id).worker == "w@host"
    late = _queued_job(owner, echo_model, deadline_at=now - timedelta(seconds=1))
    assert _claim_and_load(job_id=late.id, attempt=1, now=now, worker="w") is None
    assert Job.objects.get(id=late.id).status == JobStatus.QUEUED


def test_marking_the_first_token_touches_only_the_running_attempt(owner, echo_model):
    job = _queued_job(owner, echo_model, status=JobStatus.RUNNING, attempt=2)
    now = timezone.now()

    mark = dict(job_id=job.id, now=now, prompt_tokens=7, log_seq_reserved=1003)
    assert _mark_first_token(attempt=1, **mark) == 0
    assert _mark_first_token(attempt=2, **mark) == 1

    job.refresh_from_db()
    assert (job.first_token_at, job.prompt_tokens, job.log_seq_reserved) == (now, 7, 1003)


def test_an_update_whose_placeholders_collide_once_prepared_is_refused(owner, echo_model):
    same = PrecompiledUpdate(
        lambda a, b: (Job.objects.filter(attempt=a), {"max_attempts": b}),
        placeholders={"a": 7, "b": 7},
        fields={"a": "attempt", "b": "max_attempts"},
    )

    with pytest.raises(ValueError, match="equal once prepared"):
        same(a=1, b=2)


def test_storing_a_result_changes_what_the_orm_update_changes_only_for_the_running_attempt(owner, echo_model):
    by_orm, precompiled = (_queued_job(owner, echo_model, status=JobStatus.RUNNING, attempt=2) for _ in range(2))
    now = timezone.now()
    result = dict(
        status=JobStatus.FAILED,
        output_text="half an answer",
        error_code="backend_error",
        error_message="The model backend failed.",
        prompt_tokens=11,
        completion_tokens=3,
    )

    Job.objects.filter(id=by_orm.id, status=JobStatus.RUNNING, attempt=2).update(
        **result, finished_at=now, heartbeat_at=None
    )
    assert _store_result(job_id=precompiled.id, attempt=1, now=now, **result) == 0  # a superseded attempt
    with CaptureQueriesContext(connection) as queries:
        assert _store_result(job_id=precompiled.id, attempt=2, now=now, **result) == 1
    assert _store_result(job_id=precompiled.id, attempt=2, now=now, **result) == 0  # stored once

    assert len(queries) == 1
    own = {"id", "input", "created_at", "deadline_at", "enqueued_at", "request_fingerprint"}  # set at submit
    expected = {k: v for k, v in _fields(Job.objects.get(id=by_orm.id)).items() if k not in own}
    assert {k: v for k, v in _fields(Job.objects.get(id=precompiled.id)).items() if k not in own} == expected
    assert expected["finished_at"] == now
