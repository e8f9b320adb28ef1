"""A page whose job socket the server keeps refusing (its Redis is away) waits longer before each try."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from inference.models import AIModel, Job
from tests.e2e.test_end_user_flow import sign_up
from tests.support.processes import DaphneProcess, free_port, start_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def daphne_on_own_redis(worker_env, tmp_path):
    port = free_port()
    redis_server = start_redis(port, tmp_path)
    server = DaphneProcess({**worker_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}).start()
    yield server, redis_server
    server.stop()
    redis_server.terminate()
    redis_server.wait(timeout=10)


def test_a_refused_job_socket_is_retried_later_each_time(browser, daphne_on_own_redis):
    server, redis_server = daphne_on_own_redis
    AIModel.objects.create(slug="echo", display_name="Echo", task="chat", backend="echo", queue="nobody")
    page = browser.new_context(base_url=server.url).new_page()
    sign_up(page, "patient")
    page.get_by_label("Message", exact=True).fill("hello")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    job = Job.objects.get()  # queued on a queue nobody serves: its socket stays open, following
    attempts: list[float] = []
    page.on("websocket", lambda ws: attempts.append(time.monotonic()) if str(job.id) in ws.url else None)

    redis_server.terminate()  # from now on every job socket is accepted, then closed 4503
    redis_server.wait(timeout=10)
    page.wait_for_timeout(12000)

    # Waits of 0.5, 1, 2, 4, 8 s: a few tries in twelve seconds, not one every half second (24).
    assert 1 <= len(attempts) <= 6, [round(t - attempts[0], 2) for t in attempts]
    page.context.close()
