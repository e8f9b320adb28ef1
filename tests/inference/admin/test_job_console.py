"""The jobs console: operators find jobs and cancel, retry or requeue them; each action is audited."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inference.models import Job, JobClient, JobStatus
from inference.services.jobs import job_submit
from ops.models import AuditEntry
from tests.inference.admin.conftest import chat

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/inference/job/"


def _act(client, action: str, *jobs: Job):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(job.id) for job in jobs]}, follow=True)


def test_the_list_shows_timings_and_tokens_and_filters_by_status_and_client(operator_client, owner, echo_model):
    done = job_submit(user=owner, model=echo_model, input=chat("finished one"))
    Job.objects.filter(id=done.id).update(
        status=JobStatus.SUCCEEDED,
        started_at=done.created_at + timedelta(seconds=2),
        first_token_at=done.created_at + timedelta(seconds=2.5),
        finished_at=done.created_at + timedelta(seconds=5),
        prompt_tokens=3,
        completion_tokens=7,
    )
    queued = job_submit(user=owner, model=echo_model, input=chat("waiting one"), client=JobClient.WEB)

    page = operator_client.get(CHANGELIST, {"status__exact": "succeeded"}).content.decode()
    assert str(done.id) in page
    assert str(queued.id) not in page
    assert '<td class="field-queue_wait">2.00s</td>' in page
    assert '<td class="field-time_to_first_token">0.50s</td>' in page
    assert '<td class="field-duration">3.00s</td>' in page
    assert '<td class="field-tokens">3 + 7</td>' in page
    created = timezone.localtime(done.created_at)
    shown = f"{created:%b} {created.day}, {created:%H:%M:%S}"  # to the second, as in the logs
    assert f'<td class="field-created"><time datetime="{created.isoformat()}">{shown}</time></td>' in page
    # Why a job failed sits next to its status, before the columns a narrow screen scrolls to.
    columns = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert columns.index("error_code") == columns.index("status") + 1

    # Each job is its id's first 8 characters, linked to the job, the whole id on hover.
    change_url = f"/admin/inference/job/{done.id}/change/?_changelist_filters=status__exact%3Dsucceeded"
    short = f'<code title="{done.id}">{str(done.id)[:8]}</code>'
    assert f'<th class="field-short_id"><a href="{change_url}">{short}</a></th>' in page

    page = operator_client.get(CHANGELIST, {"client__exact": "web"}).content.decode()
    assert str(queued.id) in page
    assert str(done.id) not in page


def test_an_owners_name_lists_only_their_jobs_and_the_list_reads_no_whole_history(
    operator_client, owner, outsider, echo_model
):
    mine = job_submit(user=owner, model=echo_model, input=chat("mine"))
    theirs = job_submit(user=outsider, model=echo_model, input=chat("theirs"))

    with CaptureQueriesContext(connection) as queries:
        page = operator_client.get(CHANGELIST).content.decode()

    # The date drill-down and the list of owners each read every job on every load (0.3-0.6 s at a
    # million jobs); the "Created" filter and the owners' names filter instead.
    assert not [query["sql"] for query in queries.captured_queries if re.search(r"DATE_TRUNC|DISTINCT", query["sql"])]
    owner_link = f'<a href="?owner__id__exact={owner.pk}" title="Only the jobs of {owner}">{owner}</a>'
    assert f'<td class="field-owner_jobs">{owner_link}</td>' in page

    page = operator_client.get(f"{CHANGELIST}?owner__id__exact={owner.pk}").content.decode()
    assert str(mine.id)[:8] in page
    assert str(theirs.id)[:8] not in page


def test_search_finds_jobs_by_id_username_and_input_text(operator_client, owner, outsider, echo_model):
    mine = job_submit(user=owner, model=echo_model, input=chat("a purple elephant"))
    theirs = job_submit(user=outsider, model=echo_model, input=chat("a green frog"))

    assert str(mine.id) in operator_client.get(CHANGELIST, {"q": "purple elephant"}).content.decode()
    page = operator_client.get(CHANGELIST, {"q": "outsider"}).content.decode()
    assert str(theirs.id) in page
    assert str(mine.id) not in page
    page = operator_client.get(CHANGELIST, {"q": str(mine.id)}).content.decode()
    assert str(mine.id) in page
    assert str(theirs.id) not in page
    page = operator_client.get(CHANGELIST, {"q": str(mine.id)[:8]}).content.decode()  # as the list shows it
    assert str(mine.id) in page
    assert str(theirs.id) not in page


def test_the_detail_page_shows_the_output_and_a_timeline_rebuilt_from_the_stored_job(
    operator_client, owner, echo_model
):
    job = job_submit(user=owner, model=echo_model, input=chat("hello"))
    Job.objects.filter(id=job.id).update(
        status=JobStatus.SUCCEEDED,
        output_text="the stored answer",
        finished_at=timezone.now(),
        started_at=timezone.now(),
    )

    page = operator_client.get(f"{CHANGELIST}{job.id}/change/").content.decode()

    assert "the stored answer" in page
    assert "rebuilt from the stored job" in page
    assert "done" in page


def test_cancel_cancels_a_queued_job_and_is_audited(operator_client, operator, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("stop me"))

    _act(operator_client, "cancel_jobs", job)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    entry = AuditEntry.objects.get(action="job.cancel")
    assert (entry.actor, entry.target_id) == (operator, str(job.id))
    assert entry.details == {"status_before": "queued", "status_after": "canceled"}


def test_cancel_skips_finished_jobs_without_an_audit_entry_and_says_how_many(operator_client, owner, echo_model):
    queued = job_submit(user=owner, model=echo_model, input=chat("stop me"))
    done = job_submit(user=owner, model=echo_model, input=chat("already done"))
    Job.objects.filter(id=done.id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())

    page = _act(operator_client, "cancel_jobs", queued, done).content.decode()

    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED
    assert list(AuditEntry.objects.filter(action="job.cancel").values_list("target_id", flat=True)) == [str(queued.id)]
    assert "Canceled 1 job(s)." in page
    assert "Skipped 1 job(s)" in page


def test_cancel_asks_a_running_job_to_stop_once_and_audits_only_the_first_request(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("long answer"))
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), worker="w@host")

    first = _act(operator_client, "cancel_jobs", job).content.decode()
    second = _act(operator_client, "cancel_jobs", job).content.decode()

    job.refresh_from_db()
    assert job.cancel_requested_at is not None
    assert "Asked 1 running job(s) to stop." in first
    assert "Skipped 1 job(s)" in second
    entry = AuditEntry.objects.get(action="job.cancel")
    assert entry.details == {"status_before": "running", "status_after": "running"}


def test_jobs_cannot_be_deleted_from_the_admin(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("keep me"))

    assert operator_client.post(f"{CHANGELIST}{job.id}/delete/", {"post": "yes"}).status_code == 403
    page = _act(operator_client, "delete_selected", job).content.decode()

    assert Job.objects.filter(id=job.id).exists()
    assert 'value="delete_selected"' not in operator_client.get(CHANGELIST).content.decode()
    assert "No action selected" in page
    assert not AuditEntry.objects.exists()


def test_retry_submits_a_new_job_with_the_same_input_from_the_admin(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("again please"))
    Job.objects.filter(id=job.id).update(status=JobStatus.FAILED, error_code="backend_error")

    _act(operator_client, "retry_jobs", job)

    new_job = Job.objects.exclude(id=job.id).get()
    assert (new_job.owner, new_job.model, new_job.client) == (owner, echo_model, JobClient.ADMIN)
    assert new_job.input == job.input
    assert new_job.status == JobStatus.QUEUED
    entry = AuditEntry.objects.get(action="job.retry")
    assert entry.target_id == str(job.id)
    assert entry.details == {"new_job": str(new_job.id)}


def test_retry_is_refused_for_a_disabled_owner(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("again please"))
    Job.objects.filter(id=job.id).update(status=JobStatus.FAILED, error_code="backend_error")
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)

    page = _act(operator_client, "retry_jobs", job).content.decode()

    assert Job.objects.count() == 1
    assert "is disabled; enable the user before retrying" in page
    assert not AuditEntry.objects.filter(action="job.retry").exists()


def test_requeue_resends_a_stuck_queued_job(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("stuck in the queue"))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(id=job.id).update(enqueued_at=an_hour_ago)

    _act(operator_client, "requeue_jobs", job)

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.attempt == 1
    assert job.enqueued_at > an_hour_ago
    assert AuditEntry.objects.get(action="job.requeue").details == {"outcome": "resent", "attempt": 1}


def test_requeue_moves_a_running_job_with_a_stale_heartbeat_to_a_new_attempt(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("lost worker"))
    stale = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=stale, worker="gone@host")

    _act(operator_client, "requeue_jobs", job)

    job.refresh_from_db()
    assert (job.status, job.attempt, job.worker, job.heartbeat_at) == (JobStatus.QUEUED, 2, "", None)
    assert AuditEntry.objects.get(action="job.requeue").details == {"outcome": "requeued", "attempt": 2}


def test_requeue_leaves_a_healthy_running_job_alone(operator_client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("busy"))
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), worker="alive@host")

    page = _act(operator_client, "requeue_jobs", job).content.decode()

    job.refresh_from_db()
    assert (job.status, job.attempt) == (JobStatus.RUNNING, 1)
    assert "not stuck" in page
    assert not AuditEntry.objects.filter(action="job.requeue").exists()


def test_bulk_actions_apply_to_every_job_of_a_filtered_selection(operator_client, owner, outsider, echo_model):
    owners_jobs = [job_submit(user=owner, model=echo_model, input=chat(f"job {n}")) for n in range(3)]
    spared = job_submit(user=outsider, model=echo_model, input=chat("not mine"))

    operator_client.post(
        f"{CHANGELIST}?owner__id__exact={owner.pk}",
        {"action": "cancel_jobs", "select_across": "1", "_selected_action": [str(owners_jobs[0].id)]},
    )

    assert {job.status for job in Job.objects.filter(owner=owner)} == {JobStatus.CANCELED}
    spared.refresh_from_db()
    assert spared.status == JobStatus.QUEUED
    assert AuditEntry.objects.filter(action="job.cancel").count() == 3


def test_a_non_staff_user_gets_nothing_from_the_admin(client, owner, echo_model):
    job = job_submit(user=owner, model=echo_model, input=chat("private"))
    client.force_login(owner)

    for url in (CHANGELIST, f"{CHANGELIST}{job.id}/change/", "/admin/ops/auditentry/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    response = client.post(CHANGELIST, {"action": "cancel_jobs", "_selected_action": [str(job.id)]})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_cancel_counts_what_it_did_not_what_the_selection_read(rf, operator, owner, echo_model):
    from django.contrib import admin
    from django.contrib.messages import get_messages
    from django.contrib.messages.storage.fallback import FallbackStorage

    ended = job_submit(user=owner, model=echo_model, input=chat("about to end"))
    started = job_submit(user=owner, model=echo_model, input=chat("about to start"))
    selection = list(Job.objects.filter(id__in=[ended.id, started.id]))  # both read as queued
    # Before the action reaches them, a worker finishes one and starts the other.
    Job.objects.filter(id=ended.id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    Job.objects.filter(id=started.id).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), worker="w@host")
    request = rf.post(CHANGELIST)
    request.user, request.session = operator, {}
    request._messages = FallbackStorage(request)

    admin.site._registry[Job].cancel_jobs(request, selection)

    assert [str(message) for message in get_messages(request)] == [
        "Canceled 0 job(s). Asked 1 running job(s) to stop. Skipped 1 job(s) that had already finished or been asked "
        "to stop."
    ]
    assert list(AuditEntry.objects.filter(action="job.cancel").values_list("target_id", flat=True)) == [str(started.id)]
