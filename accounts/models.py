from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models


class Plan(models.Model):
    """Limits an operator assigns to users. An empty limit means no limit.

    Users without a plan get the default from settings (QUOTA_DEFAULT_*).
    """

    name = models.CharField(max_length=100, unique=True)
    # At least 1: a limit of 0 would refuse every request for ever (the defaults in settings read 0
    # as "no limit", so a 0 here would say the opposite); to stop a user, disable them.
    concurrent_jobs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Jobs queued or running at once; empty for no limit.",
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Job requests (REST and OpenAI-compatible) per rolling minute; empty for no limit.",
    )
    tokens_per_day = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Prompt and completion tokens per UTC day, counting running jobs' max_tokens; empty for no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """Djinn's user: a custom model from the first migration, so it can grow."""

    plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="users",
        help_text="Empty: the default plan from settings.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class ApiKey(models.Model):
    """An integrator's key: a visible prefix plus a secret kept only as a hash.

    The full key reads `djn_<prefix>_<secret>`; the prefix finds the row and
    the secret's SHA-256 is compared in constant time. The secret is random
    (256 bits), so a fast hash is enough: there is nothing to brute-force.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"djn_{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.user.is_active
