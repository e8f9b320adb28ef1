"""The queries a connection runs often are prepared once on PostgreSQL (DATABASE_PREPARED_STATEMENTS)."""

import re
import uuid

import pytest
from django.db import connection

from inference.models import Job

pytestmark = pytest.mark.django_db


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_query_run_often_on_a_connection_is_prepared_with_its_values_as_parameters():
    if connection.vendor != "postgresql":
        pytest.fail("the test suite runs on PostgreSQL")
    # psycopg prepares a query on the run after its threshold.
    looked_up = [uuid.uuid4() for _ in range(connection.settings_dict["OPTIONS"]["prepare_threshold"] + 1)]
    for job_id in looked_up:
        assert not Job.objects.filter(id=job_id).exists()

    prepared = _prepared_statements()
    lookups = [statement for statement in prepared if re.search(r'"inference_job"\."id" = \$\d', statement)]

    assert len(lookups) == 1
    assert not any(job_id.hex in statement for statement in prepared for job_id in looked_up)


def test_a_query_run_fewer_times_is_not_prepared():
    Job.objects.filter(owner_id=-1, status="running").exists()

    assert not [statement for statement in _prepared_statements() if '"inference_job"."owner_id" = $' in statement]
