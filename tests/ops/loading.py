"""Workers whose models take a while to load, as a large model's would: long enough to watch meanwhile."""

import uuid

from inference.models import AIModel
from inference.workers import worker_processes

LOAD_SECONDS = 8


def slow_model_on_a_queue_of_its_own() -> AIModel:
    queue = f"loading-{uuid.uuid4().hex[:8]}"
    return AIModel.objects.create(
        slug=f"slow-{queue}",
        display_name="Slow to load",
        task="chat",
        backend="echo",
        queue=queue,
        config={"load_seconds": LOAD_SECONDS},
    )


def loading_on(queue: str) -> bool:
    """Whether a process serving `queue` says it is still loading."""
    return any(record.queues == [queue] and not record.loaded for record in worker_processes())
