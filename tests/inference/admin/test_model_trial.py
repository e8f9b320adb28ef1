"""'Test this model' runs a short job on a real worker and shows its output, TTFT and tokens/s."""

import pytest

from inference.models import Job, JobClient, JobStatus
from ops.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_testing_a_model_runs_a_short_job_and_shows_what_came_out(celery_worker, operator_client, echo_model):
    response = operator_client.post(
        "/admin/inference/aimodel/", {"action": "test_model", "_selected_action": [echo_model.pk]}
    )

    page = response.content.decode()
    job = Job.objects.get()
    assert (job.status, job.client) == (JobStatus.SUCCEEDED, JobClient.ADMIN)
    assert "Say hello in five words." in page  # echo answers with its prompt
    assert 'class="model-trial"' in page
    assert " s</td>" in page  # a time to first token was measured
    entry = AuditEntry.objects.get(action="model.test")
    assert entry.details["job"] == str(job.id)
    assert entry.details["status"] == "succeeded"
