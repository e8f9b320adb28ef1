"""Structured logs: JSON lines that carry the request id and the job id, from the web request into the worker."""

import json
import logging

import pytest

from inference.models import Job
from inference.services.jobs import job_submit
from ops.logs import ContextFilter, JsonFormatter, job_id_var, request_id_var
from tests.support.processes import WorkerProcess, wait_for


def _format(record_logger: str, message: str, **extra) -> dict:
    record = logging.getLogger(record_logger).makeRecord(record_logger, logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_a_json_line_carries_the_ids_in_context_and_any_extras():
    request_token, job_token = request_id_var.set("req-1"), job_id_var.set("job-1")
    try:
        line = _format("djinn.test", "hello", audit=True)
    finally:
        request_id_var.reset(request_token)
        job_id_var.reset(job_token)

    assert line["message"] == "hello"
    assert (line["level"], line["logger"]) == ("INFO", "djinn.test")
    assert (line["request_id"], line["job_id"], line["audit"]) == ("req-1", "job-1", True)


@pytest.mark.django_db
def test_a_request_gets_an_id_and_a_stored_job_sets_the_job_id(client, owner, echo_model):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert len(client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]) == 32

    token = job_id_var.set(None)
    try:
        job = job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})
        assert job_id_var.get() == str(job.id)
    finally:
        job_id_var.reset(token)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_json_with_the_job_id_and_the_submitting_request_id(worker_env, owner, echo_model):
    echo_model.queue = "jsonlogs"
    echo_model.save()
    worker = WorkerProcess(dict(worker_env, LOG_FORMAT="json"), queues="jsonlogs").start()
    try:
        token = request_id_var.set("req-from-the-web")
        try:
            job = job_submit(user=owner, model=echo_model, input={"messages": [{"role": "user", "content": "hi"}]})
        finally:
            request_id_var.reset(token)
        wait_for(lambda: Job.objects.get(id=job.id).is_finished, timeout=30, what="the job to finish")

        def job_lines():
            lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
            return [line for line in lines if line.get("job_id") == str(job.id)]

        lines = wait_for(job_lines, timeout=10, what="a log line about the job")
    finally:
        worker.stop()

    assert all(line["request_id"] == "req-from-the-web" for line in lines)


def test_the_request_id_middleware_stays_async_for_async_views():
    import asyncio

    from django.http import HttpResponse
    from django.test import RequestFactory

    from ops.logs import RequestIdMiddleware

    seen = {}

    async def view(request):
        seen["request_id"] = request_id_var.get()
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    response = asyncio.run(middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="async-1")))

    assert seen == {"request_id": "async-1"}
    assert response["X-Request-ID"] == "async-1"
    assert request_id_var.get() is None
