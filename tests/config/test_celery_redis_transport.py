"""Celery sends through Djinn's Redis transport: one Redis client per connection pool, not one per message."""

from __future__ import annotations

import uuid

import redis
from kombu import Connection

from config import celery_redis_transport
from config.celery import app
from inference.streams import redis_client


def test_every_redis_url_spelling_gets_the_transport():
    for url in ("redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0", "redis+socket:///tmp/redis.sock"):
        assert Connection(url).get_transport_cls() is celery_redis_transport.Transport, url


def test_messages_sent_one_after_another_share_one_redis_client(monkeypatch, settings):
    made = []
    original_init = redis.Redis.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        original_init(self, *args, **kwargs)

    queue = f"transport-test-{uuid.uuid4().hex[:8]}"
    with app.connection_for_write() as connection, connection.Producer() as producer:
        producer.publish({"n": 0}, routing_key=queue, declare=[])  # the pool and its client, made once
        monkeypatch.setattr(redis.Redis, "__init__", counting_init)
        for n in range(1, 6):
            producer.publish({"n": n}, routing_key=queue, declare=[])
        monkeypatch.undo()

        assert isinstance(producer.channel, celery_redis_transport.Channel)
        assert made == []  # kombu's own channel made five
    key = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}{queue}"
    try:
        assert redis_client().llen(key) == 6  # and every message arrived
    finally:
        redis_client().delete(key)
