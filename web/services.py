"""Chat: conversations and their turns. Every answer is a job submitted here (client "web")."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from inference.models import AIModel, Job, JobClient
from inference.services.admission import job_create
from inference.services.jobs import job_cancel
from web.models import Conversation, Message, Role

TITLE_CHARS = 60


def _title_from(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= TITLE_CHARS else words[: TITLE_CHARS - 1].rstrip() + "…"


def _context(conversation: Conversation) -> list[dict[str, str]]:
    """The turns sent to the model: the newest that fit in what it reads (its max_input_chars).

    The oldest go first, so a long conversation goes on instead of being refused once its history
    outgrows the model; what is sent never starts with an answer. The newest turn is always sent
    (the form has checked that it fits). Assistant turns without words are left out.
    """
    turns = []
    for message in conversation.messages.select_related("job"):
        text = message.text
        if message.role == Role.ASSISTANT and not text:
            continue
        turns.append({"role": message.role, "content": text})
    budget = conversation.model.max_input_chars
    sent: list[dict[str, str]] = []
    for turn in reversed(turns):
        budget -= len(turn["content"])
        if budget < 0 and sent:
            break
        sent.append(turn)
    sent.reverse()
    while len(sent) > 1 and sent[0]["role"] == Role.ASSISTANT:
        sent.pop(0)
    return sent


def _submit_answer(*, conversation: Conversation, replacing: Job | None = None) -> Message:
    job_input: dict = {"messages": _context(conversation)}
    if conversation.temperature is not None:
        job_input["temperature"] = conversation.temperature
    if conversation.max_tokens is not None:
        job_input["max_tokens"] = conversation.max_tokens
    job = job_create(
        user=conversation.owner, model=conversation.model, input=job_input, client=JobClient.WEB, replacing=replacing
    )
    return Message.objects.create(conversation=conversation, role=Role.ASSISTANT, job=job)


@transaction.atomic
def conversation_start(
    *, user: User, model: AIModel, content: str, temperature: float | None = None, max_tokens: int | None = None
) -> Conversation:
    """A new conversation with its first message and the job answering it; nothing is kept if the job is refused."""
    conversation = Conversation.objects.create(
        owner=user, model=model, title=_title_from(content), temperature=temperature, max_tokens=max_tokens
    )
    Message.objects.create(conversation=conversation, role=Role.USER, content=content)
    _submit_answer(conversation=conversation)
    return conversation


@transaction.atomic
def message_send(
    *,
    conversation: Conversation,
    content: str,
    model: AIModel | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Message:
    """Add the user's message and submit the job answering it, with the earlier turns as context."""
    conversation.model = model or conversation.model
    conversation.temperature = temperature
    conversation.max_tokens = max_tokens
    conversation.save()
    Message.objects.create(conversation=conversation, role=Role.USER, content=content)
    return _submit_answer(conversation=conversation)


@transaction.atomic
def answer_regenerate(*, conversation: Conversation) -> Message:
    """Replace the last answer with a new job (the old job stays in history).

    The new job takes the old one's place against the user's limits (a user at their limit can
    still regenerate), and the old job is stopped only once the new one is admitted and committed:
    a cancel reaches the worker through Redis, which a refused regenerate could not roll back.
    """
    last = conversation.messages.select_related("job").last()
    replaced = None
    if last is not None and last.role == Role.ASSISTANT:
        if last.job is not None and not last.job.is_finished:
            replaced = last.job
        last.delete()
    conversation.save()  # bumps updated_at
    answer = _submit_answer(conversation=conversation, replacing=replaced)
    if replaced is not None:
        transaction.on_commit(lambda: job_cancel(job=replaced))
    return answer


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200] or conversation.title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete the thread; its jobs stay in the user's history."""
    for job in Job.objects.filter(chat_message__conversation=conversation).exclude(
        status__in=["succeeded", "failed", "canceled", "expired"]
    ):
        job_cancel(job=job)
    conversation.delete()
