"""Workers load each model once, warm the models of their queues at start, release the ones an
operator disables, and survive models that cannot load."""

import os
import re
import uuid

import pytest

from inference.models import AIModel, JobStatus
from inference.services.jobs import job_submit
from tests.inference.backends.conftest import chat, finished, register_default
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _queue() -> str:
    return f"lifecycle-{uuid.uuid4().hex[:8]}"


def test_a_model_that_cannot_load_fails_its_jobs_and_the_worker_carries_on(celery_worker, owner, echo_model):
    AIModel.objects.create(
        slug="missing-gguf", display_name="Missing", task="chat", backend="llamacpp", config={"path": "/nope/x.gguf"}
    )

    failed = finished(job_submit(user=owner, model="missing-gguf", input=chat("hi")))
    after = finished(job_submit(user=owner, model="echo", input=chat("still here")))

    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "model_unavailable")
    assert "/nope/x.gguf" in failed.error_message
    assert (after.status, after.output_text) == (JobStatus.SUCCEEDED, "still here")
    assert celery_worker.process.poll() is None


def test_a_file_that_is_not_a_model_fails_cleanly(celery_worker, owner, tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"this is not a GGUF file" * 100)
    AIModel.objects.create(
        slug="bogus-gguf", display_name="Bogus", task="chat", backend="llamacpp", config={"path": str(bogus)}
    )

    job = finished(job_submit(user=owner, model="bogus-gguf", input=chat("hi")))

    assert (job.status, job.error_code) == (JobStatus.FAILED, "model_unavailable")
    assert celery_worker.process.poll() is None


def test_a_queued_job_of_a_model_disabled_meanwhile_fails_with_model_disabled(start_worker, owner):
    queue = _queue()
    model = AIModel.objects.create(slug="soon-off", display_name="Soon off", task="chat", backend="echo", queue=queue)
    job = job_submit(user=owner, model="soon-off", input=chat("hello"))
    model.enabled = False
    model.save()

    start_worker(queue, env={"MODEL_WARMUP": "false"})
    job = finished(job, timeout=60)

    assert (job.status, job.error_code) == (JobStatus.FAILED, "model_disabled")


def test_a_worker_warms_the_models_of_its_queues_at_start(start_worker, db):
    queue = _queue()
    smollm2 = register_default("smollm2-135m")
    smollm2.queue = queue
    smollm2.save()
    AIModel.objects.create(slug="elsewhere", display_name="Elsewhere", task="chat", backend="echo", queue="other")

    worker = start_worker(queue)

    wait_for(lambda: "warmed smollm2-135m" in worker.log(), timeout=60, what="the warm-up")
    assert "model smollm2-135m loaded (llamacpp)" in worker.log()
    assert "elsewhere" not in worker.log()


def test_a_warm_model_serves_its_first_job_without_loading_again(start_worker, owner):
    queue = _queue()
    AIModel.objects.create(slug="warm-echo", display_name="Warm", task="chat", backend="echo", queue=queue)
    worker = start_worker(queue)
    wait_for(lambda: "warmed warm-echo" in worker.log(), timeout=60, what="the warm-up")
    frozen = re.search(r"warmed warm-echo.*; (\d+) objects set aside from the collector", worker.log())
    assert frozen, worker.log()
    assert int(frozen.group(1)) > 10_000  # Django, Celery and the model: gc.freeze() after warm-up

    job = finished(job_submit(user=owner, model="warm-echo", input=chat("one two")), timeout=60)
    job = finished(job_submit(user=owner, model="warm-echo", input=chat("three four")), timeout=60)

    assert job.status == JobStatus.SUCCEEDED
    assert worker.log().count("model warm-echo loaded") == 1


def test_an_idle_worker_releases_a_model_once_it_is_disabled(start_worker, owner):
    queue = _queue()
    model = AIModel.objects.create(slug="to-release", display_name="R", task="chat", backend="echo", queue=queue)
    worker = start_worker(queue, env={"MODEL_RELEASE_CHECK_SECONDS": "0.2"})
    wait_for(lambda: "warmed to-release" in worker.log(), timeout=60, what="the warm-up")

    model.enabled = False
    model.save()

    wait_for(lambda: "model to-release released" in worker.log(), timeout=30, what="the release")


def test_an_edited_model_is_loaded_again_with_its_new_config(start_worker, owner):
    queue = _queue()
    model = AIModel.objects.create(slug="edited", display_name="E", task="chat", backend="echo", queue=queue)
    worker = start_worker(queue, env={"MODEL_WARMUP": "false"})
    first = finished(job_submit(user=owner, model="edited", input=chat("alpha beta")), timeout=60)

    model.config = {"tokens": 5}
    model.save()
    second = finished(job_submit(user=owner, model="edited", input=chat("alpha beta")), timeout=60)

    assert first.output_text == "alpha beta"
    assert second.output_text == "alpha beta alpha beta alpha"
    assert worker.log().count("model edited loaded") == 2


def test_the_worker_shares_the_cores_among_its_processes(start_worker, db):
    queue = _queue()
    AIModel.objects.create(slug="threads", display_name="T", task="chat", backend="echo", queue=queue)

    worker = start_worker(queue, concurrency=2)

    wait_for(lambda: worker.log().count("warmed threads") == 2, timeout=60, what="both processes to warm")
    threads = {int(found) for found in re.findall(r"CPU threads per model in this process: (\d+)", worker.log())}
    assert threads == {max(1, os.cpu_count() // 2)}


def test_an_operator_can_set_the_threads(start_worker, db):
    queue = _queue()
    AIModel.objects.create(slug="threads", display_name="T", task="chat", backend="echo", queue=queue)

    worker = start_worker(queue, env={"MODEL_CPU_THREADS": "3"})

    wait_for(lambda: "warmed threads" in worker.log(), timeout=60, what="the warm-up")
    assert "CPU threads per model in this process: 3" in worker.log()
