"""What operators change through the admin's own forms leaves an audit entry; passwords never reach the log."""

import pytest

from accounts.services import api_key_create
from inference.models import Job, JobStatus
from inference.services.jobs import job_submit
from ops.models import AuditEntry
from tests.ops.admin_forms import change_form_data
from web.models import Conversation
from webhooks.models import JobWebhook, WebhookDelivery

pytestmark = pytest.mark.django_db

PASSWORD = "a-brand-new-pass-77"


def _chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def _user_page(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_setting_a_users_password_is_audited_without_the_password(operator_client, operator, owner):
    hash_before = owner.password

    response = operator_client.post(
        f"/admin/accounts/user/{owner.pk}/password/",
        {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    entry = AuditEntry.objects.get(action="user.password_set")
    assert (entry.actor, entry.target_id, entry.details) == (operator, str(owner.pk), {"usable": True})
    logged = str(list(AuditEntry.objects.values()))
    assert PASSWORD not in logged
    assert owner.password not in logged
    assert hash_before not in logged


def test_a_refused_password_form_leaves_no_audit_entry(operator_client, owner):
    response = operator_client.post(
        f"/admin/accounts/user/{owner.pk}/password/",
        {"password1": PASSWORD, "password2": "something-else-1", "usable_password": "true"},
    )

    assert response.status_code == 200
    assert not AuditEntry.objects.exists()


def test_unticking_active_disables_the_user_like_the_bulk_action(operator_client, operator, owner, echo_model):
    key = api_key_create(user=owner, name="laptop").api_key
    queued = job_submit(user=owner, model=echo_model, input=_chat("pending"))

    data = change_form_data(operator_client, _user_page(owner), "user_form", is_active=None)
    response = operator_client.post(_user_page(owner), data)

    assert response.status_code == 302
    owner.refresh_from_db()
    key.refresh_from_db()
    queued.refresh_from_db()
    assert not owner.is_active
    assert key.revoked_at is not None
    assert queued.status == JobStatus.CANCELED
    disabled = AuditEntry.objects.get(action="user.disable")
    assert (disabled.actor, disabled.target_id) == (operator, str(owner.pk))
    assert disabled.details == {"keys_revoked": 1, "jobs_canceled": 1}
    assert AuditEntry.objects.get(action="user.change").details == {"changed": {"is_active": False}}


def test_saving_a_user_who_stays_active_cancels_nothing(operator_client, owner, echo_model):
    queued = job_submit(user=owner, model=echo_model, input=_chat("pending"))

    data = change_form_data(operator_client, _user_page(owner), "user_form", first_name="Olive")
    operator_client.post(_user_page(owner), data)

    queued.refresh_from_db()
    assert queued.status == JobStatus.QUEUED
    assert not AuditEntry.objects.filter(action="user.disable").exists()
    assert AuditEntry.objects.get(action="user.change").details == {"changed": {"first_name": "Olive"}}


def test_an_operator_cannot_untick_their_own_active_box(operator_client, operator):
    data = change_form_data(operator_client, _user_page(operator), "user_form", is_active=None, last_name="Op")
    page = operator_client.post(_user_page(operator), data, follow=True).content.decode()

    operator.refresh_from_db()
    assert operator.is_active
    assert operator.last_name == "Op"
    assert "You cannot disable yourself" in page
    assert not AuditEntry.objects.filter(action="user.disable").exists()
    assert AuditEntry.objects.get(action="user.change").details == {"changed": {"last_name": "Op"}}


def test_changing_and_deleting_a_conversation_is_audited(operator_client, operator, owner, echo_model):
    conversation = Conversation.objects.create(owner=owner, model=echo_model, title="old title")
    page = f"/admin/web/conversation/{conversation.pk}/change/"

    operator_client.post(page, change_form_data(operator_client, page, "conversation_form", title="new title"))
    operator_client.post(f"/admin/web/conversation/{conversation.pk}/delete/", {"post": "yes"})

    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    changed = AuditEntry.objects.get(action="conversation.change")
    assert (changed.actor, changed.target_id) == (operator, str(conversation.pk))
    assert changed.details == {"changed": {"title": "new title"}}
    assert AuditEntry.objects.filter(action="conversation.delete", target_id=str(conversation.pk)).exists()


def test_changing_and_deleting_webhooks_is_audited(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=_chat("hooked"))
    hook = JobWebhook.objects.create(job=job, url="https://example.com/old", events=["completed"])
    delivery = WebhookDelivery.objects.create(
        owner=owner, job=job, event="completed", url="https://example.com/old", payload={}
    )
    page = f"/admin/webhooks/jobwebhook/{hook.pk}/change/"

    operator_client.post(
        page, change_form_data(operator_client, page, "jobwebhook_form", url="https://example.com/new")
    )
    operator_client.post(f"/admin/webhooks/webhookdelivery/{delivery.pk}/delete/", {"post": "yes"})
    operator_client.post(f"/admin/webhooks/jobwebhook/{hook.pk}/delete/", {"post": "yes"})

    assert AuditEntry.objects.get(action="job_webhook.change").details == {
        "changed": {"url": "https://example.com/new"}
    }
    assert AuditEntry.objects.get(action="webhook_delivery.delete").target_id == str(delivery.pk)
    assert AuditEntry.objects.get(action="job_webhook.delete").target_id == str(job.pk)
    assert not WebhookDelivery.objects.exists()
    assert Job.objects.filter(pk=job.pk).exists()
