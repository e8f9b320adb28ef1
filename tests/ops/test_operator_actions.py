"""Operators' actions on users, keys, models and webhooks: each does its job and leaves an audit entry."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Plan
from accounts.services import api_key_create
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_submit
from ops.audit import audit_record
from ops.models import AuditEntry
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


def _chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_disabling_a_user_revokes_their_keys_and_cancels_their_jobs(operator_client, operator, owner, echo_model):
    key = api_key_create(user=owner, name="laptop").api_key
    queued = job_submit(user=owner, model=echo_model, input=_chat("pending"))
    finished = job_submit(user=owner, model=echo_model, input=_chat("done"))
    Job.objects.filter(id=finished.id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())

    operator_client.post("/admin/accounts/user/", {"action": "disable_users", "_selected_action": [owner.pk]})

    owner.refresh_from_db()
    key.refresh_from_db()
    queued.refresh_from_db()
    finished.refresh_from_db()
    assert not owner.is_active
    assert key.revoked_at is not None
    assert (queued.status, finished.status) == (JobStatus.CANCELED, JobStatus.SUCCEEDED)
    entry = AuditEntry.objects.get(action="user.disable")
    assert (entry.actor, entry.target_id) == (operator, str(owner.pk))
    assert entry.details == {"keys_revoked": 1, "jobs_canceled": 1}


def test_an_operator_cannot_disable_themselves(operator_client, operator):
    operator_client.post("/admin/accounts/user/", {"action": "disable_users", "_selected_action": [operator.pk]})

    operator.refresh_from_db()
    assert operator.is_active
    assert not AuditEntry.objects.exists()


def test_the_user_page_shows_their_usage(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=_chat("count me"))
    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED, prompt_tokens=11, completion_tokens=31)

    page = operator_client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()
    assert "<td>11</td><td>31</td>" in page
    assert "42 token(s) today, no daily token limit." in page
    listing = operator_client.get("/admin/accounts/user/").content.decode()
    assert '<td class="field-tokens_total">42</td>' in listing
    assert '<td class="field-first_name">' not in listing  # sign-up asks for no names: no empty columns
    assert '<td class="field-plan_name">default (settings)</td>' in listing

    owner.plan = Plan.objects.create(name="small", tokens_per_day=100)
    owner.save()
    page = operator_client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()
    assert "Plan small: 0 active job(s), 42 token(s) today, 58 left today." in page
    assert '<td class="field-plan_name">small</td>' in operator_client.get("/admin/accounts/user/").content.decode()


def test_the_users_list_counts_each_listed_users_jobs_without_reading_everyones(
    operator_client, owner, outsider, echo_model
):
    for tokens in (5, 7):
        job = job_submit(user=owner, model=echo_model, input=_chat("count me"))
        Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED, prompt_tokens=1, completion_tokens=tokens)

    with CaptureQueriesContext(connection) as queries:
        listing = operator_client.get("/admin/accounts/user/").content.decode()

    rows = dict(re.findall(r'<th class="field-username"><a [^>]*>([^<]+)</a></th>(.*?)</tr>', listing, re.S))
    totals = re.compile(r'<td class="field-jobs_total">(\d+)</td><td class="field-tokens_total">(\d+)</td>')
    assert totals.search(rows[owner.username]).groups() == ("2", "14")
    assert totals.search(rows[outsider.username]).groups() == ("0", "0")
    # A join of users and jobs grouped by user read the whole job history for every page, and again
    # for its two counts: at a million jobs the list took 1.7-2.2 s to open.
    reading_jobs = [query["sql"] for query in queries.captured_queries if '"inference_job"' in query["sql"]]
    assert reading_jobs
    assert all("GROUP BY" not in sql.split("(SELECT", 1)[0] for sql in reading_jobs), reading_jobs
    assert all('"owner_id" = ("accounts_user"."id")' in sql for sql in reading_jobs), reading_jobs


def test_revoking_keys_is_audited(operator_client, operator, owner):
    key = api_key_create(user=owner, name="ci").api_key

    operator_client.post("/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.get(action="apikey.revoke").target_id == str(key.pk)
    # The list says which keys are revoked, and filters by it.
    kept = api_key_create(user=owner, name="kept").api_key
    revoked_list = operator_client.get("/admin/accounts/apikey/", {"state": "revoked"}).content.decode()
    assert '<td class="field-state">Revoked ' in revoked_list
    assert kept.prefix not in revoked_list
    active_list = operator_client.get("/admin/accounts/apikey/", {"state": "active"}).content.decode()
    assert '<td class="field-state">Active</td>' in active_list
    assert key.prefix not in active_list
    # Revoked only through the action, which also closes its sockets: the form cannot un-revoke it.
    form = operator_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert 'name="revoked_at' not in form


def test_redelivering_a_failed_webhook_reopens_it_and_is_audited(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=_chat("hooked"))
    delivery = WebhookDelivery.objects.create(
        owner=owner,
        job=job,
        event="completed",
        url="https://example.com/hook",
        payload={},
        status=DeliveryStatus.FAILED,
        attempts=5,
    )

    operator_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(delivery.id)]}
    )

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert AuditEntry.objects.get(action="webhook.redeliver").target_id == str(delivery.id)


def test_disabling_and_enabling_models_is_audited(operator_client, echo_model):
    operator_client.post("/admin/inference/aimodel/", {"action": "disable_models", "_selected_action": [echo_model.pk]})
    echo_model.refresh_from_db()
    assert not echo_model.enabled

    operator_client.post("/admin/inference/aimodel/", {"action": "enable_models", "_selected_action": [echo_model.pk]})
    echo_model.refresh_from_db()
    assert echo_model.enabled
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["model.disable", "model.enable"]


def test_saving_a_model_with_a_bad_backend_config_is_refused(operator_client, echo_model):
    response = operator_client.post(
        f"/admin/inference/aimodel/{echo_model.pk}/change/",
        {
            "slug": "echo",
            "display_name": "Echo",
            "task": "chat",
            "backend": "no-such-backend",
            "config": "{}",
            "default_params": "{}",
            "max_input_chars": 2000,
            "max_output_tokens": 500,
            "queue": "default",
            "enabled": "on",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert "errorlist" in response.content.decode()
    assert AIModel.objects.get(pk=echo_model.pk).backend == "echo"
    assert not AuditEntry.objects.exists()


def test_the_audit_log_is_searchable_and_read_only(operator_client, operator, owner):
    audit_record(actor=operator, action="user.disable", target=owner, details={"reason": "abuse"})
    audit_record(actor=operator, action="apikey.revoke", target=None)

    page = operator_client.get("/admin/ops/auditentry/", {"q": "abuse"}).content.decode()
    assert '<td class="field-action">user.disable</td>' in page
    assert '<td class="field-action">apikey.revoke</td>' not in page
    entry = AuditEntry.objects.get(action="user.disable")
    response = operator_client.post(f"/admin/ops/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AuditEntry.objects.count() == 2


def test_admin_saves_and_deletes_are_audited_without_passwords(operator_client, operator):
    operator_client.post(
        "/admin/accounts/user/add/",
        {"username": "newbie", "password1": "a-long-pass-9", "password2": "a-long-pass-9", "usable_password": "true"},
    )
    operator_client.post(
        "/admin/accounts/plan/add/",
        {"name": "pro", "concurrent_jobs": 4, "requests_per_minute": "", "tokens_per_day": ""},
    )
    plan_id = AuditEntry.objects.get(action="plan.create").target_id
    operator_client.post(f"/admin/accounts/plan/{plan_id}/delete/", {"post": "yes"})

    created = AuditEntry.objects.get(action="user.create")
    assert created.target_repr == "newbie"
    assert "a-long-pass-9" not in str(created.details)
    assert AuditEntry.objects.get(action="plan.create").details["changed"]["concurrent_jobs"] == 4
    assert AuditEntry.objects.filter(action="plan.delete", target_id=plan_id).exists()


def test_the_job_page_offers_the_actions_for_that_job(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=_chat("one job"))

    page = operator_client.get(f"/admin/inference/job/{job.id}/change/").content.decode()
    assert 'value="requeue_jobs"' in page
    assert f'name="_selected_action" value="{job.id}"' in page

    operator_client.post("/admin/inference/job/", {"action": "cancel_jobs", "_selected_action": [str(job.id)]})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
