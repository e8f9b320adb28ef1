"""A job's output is stored as `json` text on PostgreSQL and comes back as the same value."""

import pytest
from django.db import connection

from inference.models import Job, JobStatus
from inference.services.jobs import job_submit

pytestmark = pytest.mark.django_db


def test_an_output_round_trips_through_a_json_column(owner, echo_model):
    job = job_submit(user=owner, model="echo", input={"messages": [{"role": "user", "content": "hi"}]})
    output = {"embeddings": [[0.12345678, -1e-08, 3.0], [0.5, 0.25, -0.125]], "dimensions": 3, "note": "ünïcode"}
    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED, output_json=output)

    assert Job.objects.get(id=job.id).output_json == output
    assert Job.objects.filter(id=job.id).values_list("output_json", flat=True).get() == output
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = 'output_json'",
            [Job._meta.db_table],
        )
        assert cursor.fetchone() == ("json",)


def test_no_output_is_sql_null(owner, echo_model):
    job = job_submit(user=owner, model="echo", input={"messages": [{"role": "user", "content": "hi"}]})

    assert Job.objects.get(id=job.id).output_json is None
    assert Job.objects.filter(id=job.id, output_json__isnull=True).exists()
