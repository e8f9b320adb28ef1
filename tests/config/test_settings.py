"""Settings refuse malformed values and pass Django's deployment checklist."""

import ast
import os
import re
import secrets
import subprocess
import sys

import pytest

from config.env import EnvReader
from tests.support.processes import ROOT

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "djinn.example.com",
}


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JOB_", "CELERY_"))}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    return _run("-c", "import django; django.setup()", **env)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be true or false; got 'maybe'"),
        ("JOB_MAX_ATTEMPTS", "three", "JOB_MAX_ATTEMPTS must be a whole number; got 'three'"),
        ("JOB_MAX_ATTEMPTS", "0", "JOB_MAX_ATTEMPTS must be at least 1; got '0'"),
        ("DATABASE_URL", "mysql://db/djinn", "DATABASE_URL must be a postgres:// or sqlite:// URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a redis://, rediss:// or unix:// URL"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; got 'LOUD'"),
        # nan passed every range check, inf any minimum: the reaper then failed on every run.
        ("JOB_LEASE_SECONDS", "nan", "JOB_LEASE_SECONDS must be a finite number; got 'nan'"),
        ("JOB_LEASE_SECONDS", "inf", "JOB_LEASE_SECONDS must be a finite number; got 'inf'"),
    ],
)
def test_a_malformed_setting_stops_the_process_naming_the_variable(name, value, expected):
    result = _load_settings(**{name: value})

    assert result.returncode != 0
    assert expected in result.stderr


def test_time_limits_must_stay_below_the_brokers_visibility_timeout():
    result = _load_settings(JOB_TIME_LIMIT_SECONDS="4000", CELERY_VISIBILITY_TIMEOUT_SECONDS="3600")

    assert result.returncode != 0
    assert "must stay below CELERY_VISIBILITY_TIMEOUT_SECONDS" in result.stderr


def test_a_lease_shorter_than_two_heartbeats_is_refused():
    result = _load_settings(JOB_LEASE_SECONDS="5", JOB_HEARTBEAT_SECONDS="5")

    assert result.returncode != 0
    assert "JOB_LEASE_SECONDS must be more than twice JOB_HEARTBEAT_SECONDS" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _load_settings(DJANGO_DEBUG="false", DJANGO_ALLOWED_HOSTS="djinn.example.com")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deployment_checklist_without_a_warning():
    result = _run("manage.py", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def _environment_reads() -> dict[str, ast.Call]:
    """Every `env.<kind>("NAME", default, ...)` of the settings and of `make run`, by NAME."""
    reads = {}
    for path, reader in ((ROOT / "config" / "settings.py", "env"), (ROOT / "scripts" / "run.py", "setting")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == reader
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                reads[node.args[0].value] = node
    return reads


def _env_example() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE))


def test_every_setting_read_from_the_environment_is_documented_in_env_example():
    assert set(_environment_reads()) == set(_env_example())


def test_env_example_shows_each_settings_default_or_leaves_a_computed_one_empty():
    """Copying .env.example to .env changes nothing: each value written there is the default."""
    example = _env_example()
    for name, call in _environment_reads().items():
        written = example[name]
        try:  # a constant default (1024 * 1024 included); one computed from other settings raises NameError
            default = eval(compile(ast.Expression(call.args[1]), name, "eval"), {"__builtins__": {}})
        except NameError:
            assert written == "", f"{name}: its default depends on other settings; .env.example should leave it empty"
            continue
        keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
        parsed = getattr(EnvReader({name: written}), call.func.attr)(name, default, **keywords)
        assert parsed == default, f"{name}: .env.example says {written!r}, the default is {default!r}"


def _database_options(**env: str) -> dict:
    shown = _run(
        "-c",
        "import django; django.setup(); from django.conf import settings;"
        " print(repr(settings.DATABASES['default']['OPTIONS']))",
        DATABASE_URL="postgres://djinn@db.example.com/djinn?sslmode=require&application_name=api",
        **env,
    )
    assert shown.returncode == 0, shown.stderr
    return ast.literal_eval(shown.stdout.strip())


def test_the_database_pool_and_prepared_statements_keep_the_options_of_the_database_url():
    options = _database_options(DATABASE_POOL="true")

    assert options["sslmode"] == "require"
    assert options["application_name"] == "api"
    assert options["pool"]["max_size"] == 10
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5


def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them():
    options = _database_options(DATABASE_PREPARED_STATEMENTS="false")

    assert sorted(options) == ["application_name", "sslmode"]
