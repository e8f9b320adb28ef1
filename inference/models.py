from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from inference.backends import BackendConfigError, validate_backend_config
from inference.errors import InvalidJobInput
from inference.fields import OutputJSONField
from inference.validation import validate_default_params


class Task(models.TextChoices):
    CHAT = "chat", "Chat"
    COMPLETION = "completion", "Completion"
    EMBEDDING = "embedding", "Embedding"
    CLASSIFICATION = "classification", "Classification"


queue_name_validator = RegexValidator(r"^[a-z0-9][a-z0-9_.-]*$", "Use lowercase letters, digits, '.', '_' and '-'.")


class AIModel(models.Model):
    """A model operators register and users run jobs against."""

    slug = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=20, choices=Task.choices)
    backend = models.CharField(max_length=50)
    config = models.JSONField(default=dict, blank=True, help_text="Backend settings, checked by the backend on save.")
    default_params = models.JSONField(default=dict, blank=True, help_text="Parameters a job gets when it names none.")
    max_input_chars = models.PositiveIntegerField(default=32_000, validators=[MinValueValidator(1)])
    max_output_tokens = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(1)])
    queue = models.CharField(max_length=100, default="default", validators=[queue_name_validator])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = "AI model"

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        try:
            self.config = validate_backend_config(self.backend, self.task, self.config)
        except BackendConfigError as exc:
            raise ValidationError({exc.field: exc.message}) from None
        try:
            self.default_params = validate_default_params(self.task, self.default_params)
        except InvalidJobInput as exc:
            raise ValidationError({"default_params": exc.message}) from None


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.EXPIRED})
TEXT_GENERATION_TASKS = frozenset({Task.CHAT, Task.COMPLETION})


def finish_reason(*, task: str, status: str, max_tokens: int | None, completion_tokens: int) -> str | None:
    """Why a text generation that succeeded ended, in OpenAI's words: "length" once it reached its
    max_tokens (the answer is cut short there), else "stop" (the model ended it). None for a job that
    generates no text or did not succeed: its status says why it ended.
    """
    if task not in TEXT_GENERATION_TASKS or status != JobStatus.SUCCEEDED:
        return None
    return "length" if max_tokens is not None and completion_tokens >= max_tokens else "stop"


class JobClient(models.TextChoices):
    WEB = "web", "Web UI"
    REST = "rest", "REST API"
    OPENAI = "openai", "OpenAI facade"
    CLI = "cli", "Command line"
    ADMIN = "admin", "Admin"


class Job(models.Model):
    """One inference: its input, its lifecycle, and what came out.

    Status changes only through compare-and-set updates in
    inference/services/jobs.py, so workers, cancels and the reaper can race.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="jobs")
    task = models.CharField(max_length=20, choices=Task.choices)
    client = models.CharField(max_length=10, choices=JobClient.choices, default=JobClient.REST)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)

    input = models.JSONField()
    # The input's own words (messages, prompt, texts, labels), one per line: what a search looks in,
    # rather than the JSON around them (keys such as "role", escapes, numbers).
    input_text = models.TextField(blank=True, default="", editable=False)
    output_text = models.TextField(blank=True)
    output_json = OutputJSONField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # What the job may spend, counted against its owner's daily tokens until it ends (then its
    # real usage counts): its prompt, estimated, plus the most it may generate.
    reserved_tokens = models.PositiveIntegerField(default=0)

    attempt = models.PositiveSmallIntegerField(default=1)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    worker = models.CharField(max_length=255, blank=True)
    # A sequence number the job's event log may reach (streams.RESERVED_EVENTS): a log lost with
    # Redis starts again above it, past every position a watcher may hold. A default in the database
    # too: processes still running the code before it insert jobs without it during a rolling deploy.
    log_seq_reserved = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    # NULL, not "", for "no key": the unique constraint must ignore jobs without one.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent"),
            # Not on heartbeat_at, which no index holds: a running job's worker writes it every
            # JOB_HEARTBEAT_SECONDS, and PostgreSQL rewrites every index of a row whose indexed
            # column changed (nine here), where a change to unindexed columns only adds the row's new
            # version beside the old one in its page (a "HOT" update; fillfactor in migration 0008).
            # The reaper reads the few running jobs by status and compares their heartbeats.
            models.Index(fields=["status"], name="job_status"),
            # /metrics reads the jobs that ended since its totals were last sealed (ops/job_totals.py).
            models.Index(fields=["finished_at"], name="job_finished"),
            # Admission counts a user's queued and running jobs under their lock on every request:
            # this keeps that count to the few active jobs, however long the user's history.
            models.Index(
                fields=["owner"],
                condition=models.Q(status__in=["queued", "running"]),
                name="job_owner_active",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="job_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def finish_reason(self) -> str | None:
        return finish_reason(
            task=self.task,
            status=self.status,
            max_tokens=self.input.get("max_tokens"),
            completion_tokens=self.completion_tokens,
        )
