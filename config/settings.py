"""Djinn's settings: one module, every knob read from the environment.

Each value has a default that works for `make run`; `.env.example` documents
them all. A malformed value stops the process with a message naming it
(see config/env.py).
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import env, load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

# ------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-djinn-development-only-never-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", _DEV_SECRET_KEY if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a secret value when DJANGO_DEBUG is false.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list this site's host names when DJANGO_DEBUG is false.")
# https://docs.djangoproject.com/en/5.2/ref/settings/#csrf-trusted-origins
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

INSTALLED_APPS = [
    "daphne",  # first, so `runserver` serves ASGI (websockets) too
    "django.contrib.admin",
    "django.contrib.humanize",  # thousands separators in token counts (intcomma)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: no CDN
    "channels",
    "accounts",
    "inference",
    "webhooks",
    "ops",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ops.logs.RequestIdMiddleware",  # early: every later log line of the request carries its id
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
FORM_RENDERER = "web.form_rendering.FormRenderer"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".run" / "staticfiles"
# https://whitenoise.readthedocs.io/en/stable/django.html: daphne serves no files itself.
WHITENOISE_USE_FINDERS = DEBUG
# In development files come from the finders; STATIC_ROOT exists only after collectstatic.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "home"
# Sign-ups and password-reset mails per client address per hour (web/throttle.py); a reset mail
# also goes to one address at most 3 times an hour, whoever asks.
WEB_SIGNUPS_PER_HOUR = env.int("WEB_SIGNUPS_PER_HOUR", 10, min_value=1)
WEB_PASSWORD_RESETS_PER_HOUR = env.int("WEB_PASSWORD_RESETS_PER_HOUR", 5, min_value=1)
# The model a user's first chat starts with (their later chats start with the model they last used);
# when it is missing or switched off, the first enabled chat model by slug.
CHAT_DEFAULT_MODEL = env.str("CHAT_DEFAULT_MODEL", "smollm2-135m")

# ------------------------------------------------------------------------------
# E-mail (password resets): printed to the console unless an SMTP server is set
# https://docs.djangoproject.com/en/5.2/topics/email/#smtp-backend
# ------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", 25, min_value=1, max_value=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "Djinn <djinn@localhost>")

# ------------------------------------------------------------------------------
# Database
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
# ------------------------------------------------------------------------------
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{BASE_DIR / '.run' / 'djinn.sqlite3'}")}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Under daphne every request runs in a thread of its own, so per-thread persistent
# connections are never reused: a process-wide pool saves a connect per request.
# config/asgi.py turns it on; Celery's prefork children keep plain persistent
# connections, since a pool does not survive the fork.
# https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool
DATABASE_POOL = env.bool("DATABASE_POOL", False)
# Parameters bound by the server, and a statement a connection runs a few times prepared: PostgreSQL
# then parses and plans the hot ones (a job's claim, an API key's lookup) once per connection, not
# on every call (the claim took 1.4 ms of the server's time as text, 0.26 ms prepared). Off behind
# a pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
# https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=5,  # psycopg's own default, which Django turns off: prepared at its fifth run
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL:
    # Beside the URL's own options (sslmode=…, application_name=…), which it must not replace.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", 10, min_value=1),
        "timeout": env.int("DATABASE_POOL_TIMEOUT_SECONDS", 30, min_value=1),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 60, min_value=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is shared by daphne, a worker and beat: WAL lets
    # readers and one writer overlap, IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

# ------------------------------------------------------------------------------
# Redis: the Celery broker, the job event logs, worker presence and quotas
# ------------------------------------------------------------------------------
# The default is the private Redis that `make run` starts on a socket in .run/.
REDIS_URL = env.redis_url("REDIS_URL", f"unix://{BASE_DIR / '.run' / 'redis.sock'}?db=0")
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", "djinn")

# No CHANNEL_LAYERS, on purpose: watchers read the event log by position, so nothing needs a
# channel layer, and with one configured every websocket would hold its own polling receive
# loop on Redis for messages that never come.

# ------------------------------------------------------------------------------
# Jobs: leases, attempts, deadlines, streaming
# ------------------------------------------------------------------------------
# A running job's worker refreshes its heartbeat every JOB_HEARTBEAT_SECONDS;
# the reaper treats a heartbeat older than JOB_LEASE_SECONDS as a dead worker.
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", 5.0, min_value=0.1)
JOB_LEASE_SECONDS = env.float("JOB_LEASE_SECONDS", 30.0, min_value=0.5)
if JOB_LEASE_SECONDS <= 2 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "JOB_LEASE_SECONDS must be more than twice JOB_HEARTBEAT_SECONDS, "
        f"or a live worker can lose its job (got {JOB_LEASE_SECONDS} and {JOB_HEARTBEAT_SECONDS})."
    )
JOB_REAPER_INTERVAL_SECONDS = env.float("JOB_REAPER_INTERVAL_SECONDS", 10.0, min_value=0.2)
JOB_TOTALS_SEAL_INTERVAL_SECONDS = env.float("JOB_TOTALS_SEAL_INTERVAL_SECONDS", 300.0, min_value=1.0)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", 3, min_value=1, max_value=20)
# A job that has not started this long after it was submitted expires.
JOB_QUEUE_TIMEOUT_SECONDS = env.int("JOB_QUEUE_TIMEOUT_SECONDS", 3600, min_value=1)
# A queued job whose message has waited this long is sent again (duplicates are harmless).
JOB_REENQUEUE_AFTER_SECONDS = env.int("JOB_REENQUEUE_AFTER_SECONDS", 600, min_value=1)
JOB_TIME_LIMIT_SECONDS = env.int("JOB_TIME_LIMIT_SECONDS", 1800, min_value=1)

EVENT_LOG_MAX_EVENTS = env.int("EVENT_LOG_MAX_EVENTS", 20000, min_value=100)
EVENT_LOG_TTL_SECONDS = env.int("EVENT_LOG_TTL_SECONDS", 3600, min_value=10)
# A fast stream's tokens go out together at most once per window; a slow one's each at once (streams.DeltaBuffer).
STREAM_COALESCE_MS = env.int("STREAM_COALESCE_MS", 50, min_value=0, max_value=1000)
STREAM_COALESCE_TOKENS = env.int("STREAM_COALESCE_TOKENS", 16, min_value=1, max_value=1024)
# Websockets and SSE event streams one user may hold open on one daphne process; more are refused
# (4429, or 429 too_many_streams; inference/socket_limits.py).
WEBSOCKETS_PER_USER = env.int("WEBSOCKETS_PER_USER", 256, min_value=1)

# ------------------------------------------------------------------------------
# Celery
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ------------------------------------------------------------------------------
# Kombu spells a Redis unix socket `redis+socket://`.
CELERY_BROKER_URL = env.celery_broker_url(REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With acks_late, a message is redelivered once it has been unacknowledged for
# this long: it must outlive the longest task, or a healthy job runs twice.
CELERY_VISIBILITY_TIMEOUT_SECONDS = env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600, min_value=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
}
CELERY_TASK_SOFT_TIME_LIMIT = JOB_TIME_LIMIT_SECONDS
CELERY_TASK_TIME_LIMIT = JOB_TIME_LIMIT_SECONDS + 30
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_TIME_LIMIT_SECONDS + 30 ({CELERY_TASK_TIME_LIMIT}) must stay below "
        f"CELERY_VISIBILITY_TIMEOUT_SECONDS ({CELERY_VISIBILITY_TIMEOUT_SECONDS}), "
        "or the broker redelivers tasks that are still running."
    )
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# A job rides through the broker's Redis going away (its log is re-seeded once Redis is back,
# inference/log_writer.py); canceling it would kill a prefork child mid-answer. Should its message
# come again, the claim finds the job no longer queued and does nothing: it never runs twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_SEND_TASK_EVENTS = False
# Celery's Django fixup would close every connection around every task; it reconnects once in
# this many instead, and inference/worker_connections.py decides per task as Django does per request.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {
        "task": "inference.tasks.reap_jobs",
        "schedule": JOB_REAPER_INTERVAL_SECONDS,
        "options": {"expires": JOB_REAPER_INTERVAL_SECONDS},
    },
    # /metrics then reads only the jobs of the last few minutes, however long the history (ops/job_totals.py).
    "resend-overdue-webhooks": {
        "task": "webhooks.tasks.resend_overdue_deliveries",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "seal-metrics-job-totals": {
        "task": "ops.tasks.seal_job_totals",
        "schedule": JOB_TOTALS_SEAL_INTERVAL_SECONDS,
        "options": {"expires": JOB_TOTALS_SEAL_INTERVAL_SECONDS},
    },
}

# ------------------------------------------------------------------------------
# REST framework
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["inference.api.throttling.PlanReadThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["inference.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "inference.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# ------------------------------------------------------------------------------
# The integrators' API: bodies, waiting, the OpenAI-compatible facade, OpenAPI
# ------------------------------------------------------------------------------
# A body larger than this is refused with 413 before it is parsed.
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
API_MAX_REQUEST_BYTES = env.int("API_MAX_REQUEST_BYTES", 1024 * 1024, min_value=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_REQUEST_BYTES
# `Prefer: wait=N` on job creation waits at most this long for the job to finish.
API_PREFER_WAIT_MAX_SECONDS = env.int("API_PREFER_WAIT_MAX_SECONDS", 60, min_value=0, max_value=600)
# Async views, websocket handshakes and stream followers run their database work on this many
# threads per process (one pooled connection each; keep below DATABASE_POOL_MAX_SIZE).
API_DB_THREADS = env.int("API_DB_THREADS", 8, min_value=1, max_value=64)
# An OpenAI-style call waits this long for its job before canceling it and answering 504.
OPENAI_COMPAT_TIMEOUT_SECONDS = env.int("OPENAI_COMPAT_TIMEOUT_SECONDS", 600, min_value=1)

# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Djinn API",
    "DESCRIPTION": "Jobs, models, API keys, usage and webhooks; plus an OpenAI-compatible API under /v1/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The OpenAI-compatible shapes are pydantic models, whose JSON Schema (2020-12) needs OpenAPI 3.1.
    "OAS_VERSION": "3.1.0",
    # The SSE endpoint is a plain async view: a hook documents it.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "inference.api.schema.document_event_stream",
        "inference.api.schema.document_read_limits",
    ],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "inference.models.JobStatus",
        "TaskEnum": "inference.models.Task",
        "DeliveryStatusEnum": "webhooks.models.DeliveryStatus",
        "WebhookEventEnum": "webhooks.models.WebhookEvent",
        "JobObjectEnum": ["job"],
        "ListObjectEnum": ["list"],
        "ModelObjectEnum": ["model"],
        "UsageObjectEnum": ["usage"],
        "ApiKeyObjectEnum": ["api_key"],
        "SigningSecretObjectEnum": ["webhook_signing_secret"],
        "DeliveryObjectEnum": ["webhook_delivery"],
    },
}

# ------------------------------------------------------------------------------
# Quotas: the plan a user has when an operator assigned none (0 = no limit)
# ------------------------------------------------------------------------------
QUOTA_DEFAULT_CONCURRENT_JOBS = env.int("QUOTA_DEFAULT_CONCURRENT_JOBS", 16, min_value=0)
QUOTA_DEFAULT_REQUESTS_PER_MINUTE = env.int("QUOTA_DEFAULT_REQUESTS_PER_MINUTE", 600, min_value=0)
QUOTA_DEFAULT_TOKENS_PER_DAY = env.int("QUOTA_DEFAULT_TOKENS_PER_DAY", 0, min_value=0)

# ------------------------------------------------------------------------------
# Webhooks
# https://www.standardwebhooks.com/ (signatures, headers, retries)
# ------------------------------------------------------------------------------
# Webhook URLs resolving to private, loopback or link-local addresses are refused
# unless their host name or address is listed here (names, IPs or CIDRs).
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", [])
for _entry in WEBHOOK_ALLOWED_HOSTS:
    if "/" in _entry or (_entry[0].isdigit() and _entry.replace(".", "").replace(":", "").isalnum()):
        try:
            ipaddress.ip_network(_entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_HOSTS: {_entry!r} is not a valid address or CIDR.") from None
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", 10.0, min_value=0.1, max_value=60)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", 6, min_value=1, max_value=20)
# Attempt n waits WEBHOOK_RETRY_BASE_SECONDS * 4**(n-2) after attempt n-1 (5 s, 20 s, 80 s, ...).
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", 5.0, min_value=0.01)
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", "default")
# A pending delivery this far past its attempt's time has lost its task message; the sweep sends it again.
WEBHOOK_RESEND_AFTER_SECONDS = env.float("WEBHOOK_RESEND_AFTER_SECONDS", 300.0, min_value=1.0)
if WEBHOOK_RESEND_AFTER_SECONDS <= WEBHOOK_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        f"WEBHOOK_RESEND_AFTER_SECONDS ({WEBHOOK_RESEND_AFTER_SECONDS:g}) must be more than "
        f"WEBHOOK_TIMEOUT_SECONDS ({WEBHOOK_TIMEOUT_SECONDS:g}), or an attempt still in flight is sent again."
    )

# ------------------------------------------------------------------------------
# Models: nothing is ever fetched from a hub
# ------------------------------------------------------------------------------
HF_HUB_OFFLINE = True
# Each worker process loads the enabled models of its queues when it starts (inference/warmup.py),
# so the first job does not wait for a load; false loads each model on its first job instead.
MODEL_WARMUP = env.bool("MODEL_WARMUP", True)
# How often an idle worker process releases models an operator disabled, edited or deleted (0: only
# when their next job arrives).
MODEL_RELEASE_CHECK_SECONDS = env.float("MODEL_RELEASE_CHECK_SECONDS", 30.0, min_value=0)
# CPU threads each worker process gives a model that names none (llama.cpp, torch); 0: the cores
# divided among the worker's processes, so `-c 2` on 2 cores runs two 1-thread models, not 4 threads.
MODEL_CPU_THREADS = env.int("MODEL_CPU_THREADS", 0, min_value=0, max_value=512)

# ------------------------------------------------------------------------------
# Security (production)
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapers talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, min_value=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
if env.bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# ------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
# `json`: one object per line with the job id and request id (ops/logs.py), for a log collector.
LOG_FORMAT = env.str("LOG_FORMAT", "plain", choices=("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "ops.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# Celery replaces the root logger's handlers unless told not to; JSON logs must survive in workers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# ------------------------------------------------------------------------------
# Operations: /metrics answers a scraper presenting this bearer token (or a staff session); empty: staff only
# ------------------------------------------------------------------------------
METRICS_TOKEN = env.str("METRICS_TOKEN", "")
