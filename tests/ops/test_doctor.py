"""`manage.py doctor` checks every part and says what to fix; it exits non-zero on a failure."""

import io

import pytest
from django.core.management import call_command

from inference.models import AIModel

pytestmark = pytest.mark.django_db


def _doctor() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("doctor", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue() + err.getvalue()


@pytest.mark.worker
def test_it_passes_when_every_part_answers(celery_worker, echo_model, settings, monkeypatch):
    settings.DEBUG = True  # as under `make run`; pytest-django turns it off
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    settings.METRICS_TOKEN = "set"
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)  # the browser tests set it

    code, report = _doctor()

    assert code == 0, report
    assert "ok   database" in report
    assert "ok   redis" in report
    assert "ok   workers" in report
    assert "ok   models    echo (echo, queue default)" in report
    assert "All checks pass." in report


@pytest.mark.worker
def test_it_names_a_missing_model_file_and_a_queue_no_worker_serves(celery_worker, echo_model):
    AIModel.objects.create(
        slug="lost",
        display_name="Lost",
        task="chat",
        backend="llamacpp",
        config={"path": "/nonexistent/model.gguf"},
        queue="gpu",
    )

    code, report = _doctor()

    assert code == 1
    assert "FAIL models    lost: The model file '/nonexistent/model.gguf' does not exist." in report
    assert "FAIL workers   no worker consumes queue 'gpu'" in report
    assert "-> start `-Q gpu`" in report


def test_it_runs_djangos_deployment_checks_when_debug_is_off(settings, echo_model):
    settings.DEBUG = False
    settings.SESSION_COOKIE_SECURE = False

    code, report = _doctor()

    assert "warn settings  security.W012" in report
    assert code in (0, 1)


def test_it_fails_when_debug_serves_public_hosts(settings, echo_model):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["djinn.example.com"]

    code, report = _doctor()

    assert code == 1
    assert "DEBUG is on while serving public hosts" in report
    assert "-> set DJANGO_DEBUG=false" in report


def test_it_names_redis_when_redis_is_unreachable(unreachable_redis, echo_model):
    code, report = _doctor()

    assert code == 1
    assert "FAIL redis     redis unreachable" in report
    assert "FAIL workers   unknown while Redis is unreachable" in report
