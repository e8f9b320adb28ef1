"""A job's message pushed straight into Redis is the message Celery's `send_task` would have sent."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from celery import signals
from django.conf import settings

from config.celery import app
from inference import queueing
from inference.queueing import RUN_JOB_TASK, publish_run_job
from inference.streams import redis_client
from ops.log_signals import HEADER as REQUEST_ID_HEADER
from ops.logs import request_id_var


@pytest.fixture
def queue():
    name = f"queueing-test-{uuid.uuid4().hex[:8]}"
    yield name
    # The queue, and the bindings send_task declared for it.
    redis_client().delete(*redis_client().keys(f"{queueing._queue_key('')}*{name}"))


def _messages(queue: str) -> list[dict]:
    """The queue's messages, oldest first (kombu pushes on the left and pops on the right)."""
    return [json.loads(raw) for raw in reversed(redis_client().lrange(queueing._queue_key(queue), 0, -1))]


def test_the_test_settings_push_job_messages_directly():
    assert queueing._pushed_directly()


def test_a_job_message_is_field_for_field_the_one_send_task_sends(queue):
    task_id, args = str(uuid.uuid4()), [str(uuid.uuid4()), 3]
    app.send_task(RUN_JOB_TASK, args=args, queue=queue, task_id=task_id, argsrepr=repr(args), kwargsrepr="{}")
    publish_run_job(args, queue=queue, task_id=task_id)

    celerys, ours = _messages(queue)
    # Kombu's delivery tag is a fresh uuid per message: the only field that may differ.
    assert uuid.UUID(ours["properties"].pop("delivery_tag")) != uuid.UUID(celerys["properties"].pop("delivery_tag"))
    assert ours == celerys
    assert (ours["headers"]["task"], ours["headers"]["id"]) == (RUN_JOB_TASK, task_id)


def test_two_messages_differ_only_in_their_task_arguments_and_ids(queue):
    """What `publish_run_job` fills in per message is all that changes between two of Celery's own:
    should a new Celery stamp something else on each message, this says so."""
    for attempt in (1, 2):
        args = [str(uuid.uuid4()), attempt]
        app.send_task(RUN_JOB_TASK, args=args, queue=queue, argsrepr=repr(args), kwargsrepr="{}")

    def leaves(value, path=()):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from leaves(inner, (*path, key))
        else:
            yield path, value

    first, second = (dict(leaves(message)) for message in _messages(queue))
    assert first.keys() == second.keys()
    assert {path for path in first if first[path] != second[path]} == {
        ("body",),
        ("headers", "id"),
        ("headers", "root_id"),
        ("headers", "argsrepr"),
        ("properties", "correlation_id"),
        ("properties", "argsrepr"),
        ("properties", "delivery_tag"),
    }


def test_publish_signals_are_sent_and_their_headers_travel(queue):
    sent = []

    def add_header(headers=None, **kwargs):
        headers["x-added-before-publish"] = "yes"

    def after(sender=None, headers=None, routing_key=None, **kwargs):
        sent.append((sender, headers["id"], routing_key))

    signals.before_task_publish.connect(add_header, weak=False)
    signals.after_task_publish.connect(after, weak=False)
    token = request_id_var.set("request-42")  # ops.log_signals carries it to the worker in a header
    try:
        publish_run_job([str(uuid.uuid4()), 1], queue=queue, task_id="task-1")
    finally:
        request_id_var.reset(token)
        signals.before_task_publish.disconnect(add_header)
        signals.after_task_publish.disconnect(after)

    (message,) = _messages(queue)
    assert message["headers"]["x-added-before-publish"] == "yes"
    assert message["headers"][REQUEST_ID_HEADER] == "request-42"
    assert sent == [(RUN_JOB_TASK, "task-1", queue)]


def test_a_connection_redis_dropped_is_replaced_and_the_message_sent(queue):
    """What kombu's publish retry did for `send_task` after a Redis restart, the pool does here."""
    pool = redis_client().connection_pool
    connection = pool.get_connection()
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    pool.release(connection)  # the publish takes it again: the pool hands out its newest idle one
    with redis.Redis.from_url(settings.REDIS_URL) as killer:
        assert killer.client_kill_filter(_id=client_id) == 1

    publish_run_job([str(uuid.uuid4()), 1], queue=queue, task_id="task-after-a-restart")

    assert [message["headers"]["id"] for message in _messages(queue)] == ["task-after-a-restart"]


def test_messages_for_another_broker_are_left_to_send_task(monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "amqp://guest:guest@127.0.0.1:5672//")
    queueing._pushed_directly.cache_clear()
    try:
        assert not queueing._pushed_directly()
    finally:
        monkeypatch.undo()
        queueing._pushed_directly.cache_clear()
    assert queueing._pushed_directly()
