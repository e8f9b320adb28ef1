from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from inference.models import AIModel, Job


class Conversation(models.Model):
    """A chat thread of one user with one model; its messages are the context of the next turn."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="conversations")
    title = models.CharField(max_length=200)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent")]

    def __str__(self) -> str:
        return self.title


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class Message(models.Model):
    """One turn. An assistant's message is the output of its job; a user's holds what they wrote."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="chat_message")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def text(self) -> str:
        """What the message says: an assistant's words come from its job once it has any."""
        if self.role == Role.ASSISTANT and self.job is not None:
            return self.job.output_text
        return self.content
