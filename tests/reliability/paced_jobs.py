"""Paced echo jobs on a queue of their own: only the workers a reliability test starts (and kills) run them."""

from __future__ import annotations

from inference import streams
from inference.models import AIModel, Job
from tests.support.processes import wait_for

SLUG = "slow-echo"


def slow_echo_model(*, queue: str, tokens: int, tokens_per_second: float, **fields) -> AIModel:
    """A chat model answering `tokens` tokens at `tokens_per_second`, served only from `queue`."""
    return AIModel.objects.create(
        slug=SLUG,
        display_name="Slow echo",
        task="chat",
        backend="echo",
        queue=queue,
        config={"tokens": tokens, "tokens_per_second": tokens_per_second},
        **fields,
    )


def wait_streaming(job: Job, timeout: float = 20.0, what: str = "the job to stream") -> None:
    """Until the job's log holds three deltas: a worker is in the middle of it."""
    wait_for(lambda: sum(e.type == "delta" for e in streams.read_events(job.id)) >= 3, timeout=timeout, what=what)


def wait_finished(job: Job, timeout: float = 60) -> Job:
    """Until the stored job has ended, whichever way; returns it as stored."""

    def done():
        job.refresh_from_db()
        return job.is_finished

    wait_for(done, timeout=timeout, what=f"job {job.id} to finish")
    return job
