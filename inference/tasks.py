"""Celery tasks: thin wrappers that pass ids to services."""

from celery import shared_task

from inference import worker_connections  # noqa: F401  (connects the per-task database signals)
from inference.services.execution import DatabaseUnavailable, job_execute
from inference.services.jobs import jobs_reap
from inference.warmup import start_lifecycle  # noqa: F401  (connects the model warm-up and release signals)
from inference.workers import workers_online  # noqa: F401  (connects the presence signals in workers)


# A job the database would not let start is tried again soon, with backoff; should every try fail,
# the reaper resends its message after JOB_REENQUEUE_AFTER_SECONDS, until its queue deadline.
@shared_task(
    name="inference.tasks.run_job",
    bind=True,
    autoretry_for=(DatabaseUnavailable,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=12,
)
def run_job(self, job_id: str, attempt: int) -> str | None:
    return job_execute(job_id=job_id, attempt=attempt, worker=self.request.hostname or "worker")


@shared_task(name="inference.tasks.reap_jobs")
def reap_jobs() -> dict[str, int]:
    return vars(jobs_reap())
