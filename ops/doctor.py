"""`manage.py doctor`: every check an operator runs before trusting a deployment, each saying how to fix it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core import checks as django_checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from inference.backends import BackendConfigError, BackendError, build_backend, model_files, validate_backend_config
from inference.models import AIModel
from ops import health

OK, WARN, FAIL = "ok", "warn", "FAIL"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@dataclass(frozen=True)
class Finding:
    level: str
    area: str
    message: str
    fix: str = ""


def check_database() -> Iterator[Finding]:
    problem = health.check_database()
    if problem:
        yield Finding(FAIL, "database", problem, "start PostgreSQL or correct DATABASE_URL")
        return
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        yield Finding(FAIL, "database", f"{len(pending)} migration(s) not applied", "run `manage.py migrate`")
    else:
        yield Finding(OK, "database", f"{connection.vendor} reachable, migrations applied")


def check_redis() -> Iterator[Finding]:
    problem = health.check_redis()
    if problem:
        yield Finding(FAIL, "redis", problem, "start Redis or correct REDIS_URL")
    else:
        yield Finding(OK, "redis", "reachable")


def check_workers(redis_ok: bool) -> Iterator[Finding]:
    if not redis_ok:
        yield Finding(FAIL, "workers", "unknown while Redis is unreachable", "fix Redis first")
        return
    from inference.workers import workers_online

    workers = workers_online()
    if not workers:
        yield Finding(FAIL, "workers", "no Celery worker online", "start one: `celery -A config worker -Q default`")
        return
    served = {queue for worker in workers for queue in worker.get("queues", [])}
    yield Finding(OK, "workers", f"{len(workers)} online, serving queue(s): {', '.join(sorted(served))}")
    queues = set(AIModel.objects.filter(enabled=True).values_list("queue", flat=True))
    for queue in sorted(queues - served):
        yield Finding(
            FAIL, "workers", f"no worker consumes queue {queue!r}, so its models' jobs wait", f"start `-Q {queue}`"
        )


def check_models() -> Iterator[Finding]:
    models = list(AIModel.objects.filter(enabled=True))
    if not models:
        yield Finding(WARN, "models", "no model is enabled", "run `manage.py registermodels` or add one in the admin")
    for model in models:
        try:
            config = validate_backend_config(model.backend, model.task, model.config)
            backend = build_backend(model.backend, config)
            _check_files(backend, config)
        except BackendConfigError as exc:
            yield Finding(FAIL, "models", f"{model.slug}: {exc.field}: {exc.message}", "correct it in the admin")
        except BackendError as exc:
            yield Finding(FAIL, "models", f"{model.slug}: {exc.message}", "install its files or disable the model")
        else:
            yield Finding(OK, "models", f"{model.slug} ({model.backend}, queue {model.queue})")


def _check_files(backend, config: dict) -> None:
    """Find the weights without loading them: the file, directory or package the config names."""
    for finder in ("model_file", "model_dir"):
        if hasattr(backend, finder):
            getattr(backend, finder)()
            return
    if config.get("path"):
        model_files.existing_path(config["path"], directory=True)


def check_settings() -> Iterator[Finding]:
    hosts = set(settings.ALLOWED_HOSTS)
    if settings.DEBUG and (hosts - LOCAL_HOSTS):
        yield Finding(
            FAIL,
            "settings",
            "DEBUG is on while serving public hosts: error pages would show secrets",
            "set DJANGO_DEBUG=false",
        )
    elif settings.DEBUG:
        yield Finding(WARN, "settings", "DEBUG is on (fine for `make run`)", "set DJANGO_DEBUG=false in production")
    if not settings.DEBUG and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        yield Finding(WARN, "settings", "SQLite in production", "set DATABASE_URL to PostgreSQL")
    if not settings.METRICS_TOKEN:
        yield Finding(WARN, "settings", "METRICS_TOKEN is empty: only staff sessions can read /metrics", "set one")
    messages = django_checks.run_checks(include_deployment_checks=not settings.DEBUG)
    serious = [m for m in messages if m.level >= django_checks.ERROR]
    warnings = [m for m in messages if django_checks.WARNING <= m.level < django_checks.ERROR]
    for message in serious:
        yield Finding(FAIL, "settings", f"{message.id}: {message.msg}", message.hint or "")
    for message in warnings:
        yield Finding(WARN, "settings", f"{message.id}: {message.msg}", message.hint or "")
    if not serious:
        yield Finding(OK, "settings", "Django's system checks pass" + ("" if settings.DEBUG else " (with --deploy)"))


def run_doctor() -> list[Finding]:
    findings = [*check_database()]
    redis = [*check_redis()]
    findings += redis
    try:
        findings += check_workers(redis_ok=redis[0].level == OK)
    except DatabaseError as exc:
        findings.append(Finding(FAIL, "workers", f"cannot read model queues: {exc}".strip(), "run `manage.py migrate`"))
    if health.check_database() is not None:
        findings.append(Finding(FAIL, "models", "unknown while the database is unreachable", "fix the database first"))
    else:
        try:
            findings += check_models()
        except DatabaseError as exc:  # tables missing before `migrate`
            problem = f"cannot read the registry: {exc}".strip()
            findings.append(Finding(FAIL, "models", problem, "run `manage.py migrate`"))
    findings += check_settings()
    return findings
