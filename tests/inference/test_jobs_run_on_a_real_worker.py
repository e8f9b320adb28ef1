"""Jobs run end to end: the test process submits, a real Celery worker runs them."""

import io

import pytest
from django.core.management import CommandError, call_command

from inference import streams
from inference.models import AIModel, Job, JobStatus
from inference.services.jobs import job_cancel, job_submit
from tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _chat(text: str, **params) -> dict:
    return {"messages": [{"role": "user", "content": text}], **params}


def _finished(job: Job) -> Job:
    def done():
        job.refresh_from_db()
        return job.is_finished

    wait_for(done, timeout=30, what=f"job {job.id} to finish")
    return job


def test_a_worker_runs_a_job_and_stores_output_usage_and_timings(celery_worker, owner, echo_model):
    job = _finished(job_submit(user=owner, model="echo", input=_chat("the quick brown fox")))

    assert job.status == JobStatus.SUCCEEDED
    assert job.output_text == "the quick brown fox"
    assert (job.prompt_tokens, job.completion_tokens) == (4, 4)
    assert job.created_at <= job.started_at <= job.first_token_at <= job.finished_at
    assert job.worker == celery_worker.name


def test_the_streamed_deltas_add_up_to_the_stored_output(celery_worker, owner, echo_model):
    echo_model.config = {"tokens": 300}
    echo_model.save()

    job = _finished(job_submit(user=owner, model="echo", input=_chat("alpha beta gamma", max_tokens=300)))

    events = streams.read_events(job.id)
    deltas = [event for event in events if event.type == "delta"]
    assert "".join(event.data["text"] for event in deltas) == job.output_text
    assert len(deltas) > 1, "tokens should arrive in several coalesced deltas"
    assert all(len(event.data["text"].split()) <= 16 for event in deltas)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "done"
    assert events[-1].data["usage"]["completion_tokens"] == 300
    # Reserved with the first token's mark, past every event: a log lost now would start again above them.
    assert events[-1].seq < job.log_seq_reserved <= events[-1].seq + streams.RESERVED_EVENTS


def test_a_failing_backend_fails_the_job_with_its_code(celery_worker, owner):
    AIModel.objects.create(
        slug="broken", display_name="Broken", task="chat", backend="echo", config={"fail_with": "model_unavailable"}
    )

    job = _finished(job_submit(user=owner, model="broken", input=_chat("hi there")))

    assert (job.status, job.error_code) == (JobStatus.FAILED, "model_unavailable")
    # Nothing came of it: nothing is taken from the owner's tokens for the day.
    assert (job.prompt_tokens, job.completion_tokens, job.output_text) == (0, 0, "")
    assert streams.read_events(job.id)[-1].data["usage"]["total_tokens"] == 0


def test_a_backend_failing_mid_answer_keeps_what_it_wrote_and_charges_for_it(celery_worker, owner):
    AIModel.objects.create(
        slug="flaky",
        display_name="Flaky",
        task="chat",
        backend="echo",
        config={"tokens": 20, "fail_with": "generation_failed", "fail_after_tokens": 5},
    )

    job = _finished(job_submit(user=owner, model="flaky", input=_chat("one two three four five six")))

    assert (job.status, job.error_code) == (JobStatus.FAILED, "generation_failed")
    assert job.output_text == "one two three four five "
    assert (job.prompt_tokens, job.completion_tokens) == (6, 5)
    deltas = [event.data["text"] for event in streams.read_events(job.id) if event.type == "delta"]
    assert "".join(deltas) == job.output_text


def test_cancel_mid_stream_keeps_the_partial_output(celery_worker, owner, echo_model):
    echo_model.config = {"tokens": 400, "tokens_per_second": 100}
    echo_model.save()
    job = job_submit(user=owner, model="echo", input=_chat("one two three four", max_tokens=400))
    wait_for(lambda: any(e.type == "delta" for e in streams.read_events(job.id)), what="first delta")

    job_cancel(job=job)
    job = _finished(job)

    assert job.status == JobStatus.CANCELED
    assert 0 < job.completion_tokens < 400
    deltas = [e.data["text"] for e in streams.read_events(job.id) if e.type == "delta"]
    assert "".join(deltas) == job.output_text
    assert job.output_text.startswith("one two three four")


def _embedding_model(**config) -> AIModel:
    return AIModel.objects.create(slug="embed", display_name="Embed", task="embedding", backend="echo", config=config)


def _texts(count: int) -> list[str]:
    return [f"text number {i}" for i in range(count)]


def test_an_embedding_job_reports_its_progress_between_steps(celery_worker, owner):
    _embedding_model(batch_size=2)
    job = _finished(job_submit(user=owner, model="embed", input={"input": _texts(7)}))

    events = streams.read_events(job.id)
    assert [event.type for event in events] == ["status", "status", "progress", "progress", "progress", "done"]
    progress = [event.data for event in events if event.type == "progress"]
    assert progress == [{"completed": done, "total": 7} for done in (2, 4, 6)]
    assert job.status == JobStatus.SUCCEEDED
    assert len(job.output_json["embeddings"]) == 7
    assert events[-1].data["output"] == job.output_json


def test_a_job_of_many_small_steps_reports_progress_at_most_fifteen_times(celery_worker, owner):
    AIModel.objects.create(
        slug="sort", display_name="Sort", task="classification", backend="echo", config={"batch_size": 1}
    )
    job = _finished(job_submit(user=owner, model="sort", input={"input": _texts(200), "labels": ["a", "b"]}))

    progress = [event.data["completed"] for event in streams.read_events(job.id) if event.type == "progress"]
    assert progress == list(range(13, 200, 13))  # 16 steps of 13 texts (the last one of 5): few events in the log
    assert len(job.output_json["results"]) == 200


def test_cancel_between_steps_keeps_the_texts_done_and_charges_only_for_them(celery_worker, owner):
    _embedding_model(batch_size=2, seconds_per_text=0.15)
    texts = _texts(20)
    job = job_submit(user=owner, model="embed", input={"input": texts})
    wait_for(lambda: any(e.type == "progress" for e in streams.read_events(job.id)), what="a first step")

    job_cancel(job=job)
    job = _finished(job)

    assert job.status == JobStatus.CANCELED
    done = len(job.output_json["embeddings"])
    assert 2 <= done < 20  # stopped between two steps
    assert done % 2 == 0  # after whole ones
    assert job.prompt_tokens == len(" ".join(texts[:done]).split())  # echo counts words
    reached = [e.data["completed"] for e in streams.read_events(job.id) if e.type == "progress"]
    assert reached[-1] == done
    assert streams.read_events(job.id)[-1].data["output"] == job.output_json


def test_runjob_prints_the_answer_and_exits_cleanly(celery_worker, owner, echo_model):
    out, err = io.StringIO(), io.StringIO()

    call_command("runjob", "echo", "hello from the shell", "--user", "owner", stdout=out, stderr=err)

    assert out.getvalue().strip() == "hello from the shell"
    assert "succeeded" in err.getvalue()


def test_runjob_fails_loudly_when_the_job_fails(celery_worker, owner):
    AIModel.objects.create(
        slug="broken", display_name="Broken", task="chat", backend="echo", config={"fail_with": "model_unavailable"}
    )

    with pytest.raises(CommandError, match="failed: model_unavailable"):
        call_command("runjob", "broken", "hi", "--user", "owner", stdout=io.StringIO(), stderr=io.StringIO())


def test_runjob_refuses_an_unknown_model(owner):
    with pytest.raises(CommandError, match="no model named 'nope'"):
        call_command("runjob", "nope", "hi", "--user", "owner")
