"""Celery tasks of the operators' side: thin wrappers over services."""

from celery import shared_task

from ops.job_totals import seal_job_totals
from ops.metrics import LATENCY_BUCKETS


@shared_task(name="ops.tasks.seal_job_totals")
def seal_metrics_job_totals() -> str:
    """Fold the jobs that are past changing into /metrics' sealed totals."""
    return seal_job_totals(latency_bounds=LATENCY_BUCKETS).isoformat()
