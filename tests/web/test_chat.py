import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inference.models import AIModel, Job
from web.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _start(client, content="hello there", **extra):
    return client.post(reverse("chat"), {"content": content, "model": "echo", **extra})


def test_a_first_message_starts_a_conversation_and_a_web_job(owner_client, owner, echo_model):
    response = _start(owner_client, temperature="0.5", max_tokens="50")
    conversation = Conversation.objects.get(owner=owner)
    assert response["Location"] == reverse("conversation", args=[conversation.id])
    assert conversation.title == "hello there"
    user_message, answer = conversation.messages.all()
    assert (user_message.role, user_message.content) == ("user", "hello there")
    assert answer.job.client == "web"
    assert answer.job.input["messages"] == [{"role": "user", "content": "hello there"}]
    assert answer.job.input["temperature"] == 0.5
    assert answer.job.input["max_tokens"] == 50


def test_earlier_turns_go_to_the_model_as_context(owner_client, owner, echo_model):
    _start(owner_client, "first question")
    conversation = Conversation.objects.get(owner=owner)
    Job.objects.filter(chat_message__conversation=conversation).update(status="succeeded", output_text="first answer")
    owner_client.post(reverse("conversation", args=[conversation.id]), {"content": "second", "model": "echo"})
    last = conversation.messages.last()
    assert last.job.input["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second"},
    ]


def test_a_long_conversation_sends_the_newest_turns_that_fit_instead_of_being_refused(owner_client, owner, echo_model):
    echo_model.max_input_chars = 100
    echo_model.save()
    _start(owner_client, "q1 " + "a" * 27)  # 30 characters a turn
    conversation = Conversation.objects.get(owner=owner)
    for n in (2, 3, 4):
        Job.objects.filter(chat_message__conversation=conversation).update(status="succeeded", output_text="r" * 30)
        owner_client.post(
            reverse("conversation", args=[conversation.id]), {"content": f"q{n} " + "a" * 27, "model": "echo"}
        )

    # Seven turns of 30 characters; the model reads 100: the newest three, from a question on.
    sent = conversation.messages.last().job.input["messages"]
    assert [turn["content"][:2] for turn in sent] == ["q3", "rr", "q4"]
    assert sent[0]["role"] == "user"
    assert conversation.messages.last().job.status == "queued"  # admitted, not refused as too large


def _preselected_model(client) -> str | None:
    html = client.get(reverse("chat")).content.decode()
    selected = re.search(r'<option value="([^"]+)"[^>]*\sselected>', html)
    return selected and selected.group(1)


@pytest.fixture
def chat_model_b(db):
    return AIModel.objects.create(slug="model-b", display_name="Model B", task="chat", backend="echo")


def test_a_first_chat_starts_with_the_configured_default_model(owner_client, echo_model, chat_model_b, settings):
    settings.CHAT_DEFAULT_MODEL = "model-b"
    assert _preselected_model(owner_client) == "model-b"

    settings.CHAT_DEFAULT_MODEL = "no-such-model"  # missing: the picker's first model, as without a default
    assert _preselected_model(owner_client) is None


def test_a_new_chat_starts_with_the_model_of_the_users_latest_conversation(
    owner_client, outsider, echo_model, chat_model_b, settings
):
    settings.CHAT_DEFAULT_MODEL = "echo"
    _start(owner_client, model="model-b")
    outsider_client = Client()
    outsider_client.force_login(outsider)
    _start(outsider_client, model="echo")  # someone else's latest chat counts for nothing here
    assert _preselected_model(owner_client) == "model-b"

    AIModel.objects.filter(slug="model-b").update(enabled=False)  # switched off: back to the default
    assert _preselected_model(owner_client) == "echo"


def test_max_tokens_above_the_model_limit_is_refused_in_words(owner_client, echo_model):
    response = _start(owner_client, max_tokens="5000")
    assert response.status_code == 200
    assert "Echo writes at most 500 tokens." in response.text
    assert not Conversation.objects.exists()


def test_a_message_too_long_for_the_model_is_refused(owner_client, echo_model):
    response = _start(owner_client, content="x" * 2001)
    assert "reads at most 2000" in response.text


def test_a_disabled_model_is_explained_and_nothing_is_kept(owner_client, owner, echo_model):
    _start(owner_client)
    conversation = Conversation.objects.get(owner=owner)
    echo_model.enabled = False
    echo_model.save()
    response = owner_client.post(reverse("conversation", args=[conversation.id]), {"content": "more", "model": "echo"})
    assert response.status_code == 200
    assert "This model is not available right now. Pick another one." in response.text
    assert conversation.messages.count() == 2


def test_a_quota_refusal_is_shown_in_place(owner_client, owner, echo_model):
    from accounts.models import Plan

    owner.plan = Plan.objects.create(name="tiny", concurrent_jobs=1)
    owner.save()
    _start(owner_client)
    response = _start(owner_client, "again")
    assert response.status_code == 200
    assert "jobs queued or running at once" in response.text
    assert "Try again in 1 second" in response.text
    assert Conversation.objects.count() == 1


def test_the_conversation_page_escapes_what_was_said(owner_client, owner, echo_model):
    _start(owner_client, "<script>alert(1)</script>")
    conversation = Conversation.objects.get(owner=owner)
    page = owner_client.get(reverse("conversation", args=[conversation.id])).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _note(page: str) -> str:
    note = re.search(r"<p class=\"msg-note\" data-length-note ?(hidden)?>(.*?)</p>", page, re.S)
    return ("hidden: " if note[1] else "") + " ".join(note[2].split())


@pytest.mark.parametrize(
    ("max_tokens", "completion_tokens", "note"),
    [
        ("40", 40, "Cut short at 40 tokens, its Max tokens (Echo allows up to 500). Ask it to go on for the rest."),
        ("", 500, "Cut short at 500 tokens, the most Echo writes in one answer. Ask it to go on for the rest."),
        ("", 12, "hidden: Cut short at 500 tokens, the most Echo writes in one answer. Ask it to go on for the rest."),
    ],
)
def test_an_answer_its_max_tokens_cut_short_says_so(
    owner_client, owner, echo_model, max_tokens, completion_tokens, note
):
    _start(owner_client, max_tokens=max_tokens)
    conversation = Conversation.objects.get(owner=owner)
    Job.objects.filter(chat_message__conversation=conversation).update(
        status="succeeded", output_text="cut", completion_tokens=completion_tokens
    )

    page = owner_client.get(reverse("conversation", args=[conversation.id])).text

    assert _note(page) == note


def test_the_conversation_page_reads_as_many_rows_however_many_turns_it_has(owner_client, owner, echo_model):
    def queries_to_show(conversation) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(reverse("conversation", args=[conversation.id])).status_code == 200
        return len(queries)

    _start(owner_client, "first question")
    conversation = Conversation.objects.get(owner=owner)
    one_turn = queries_to_show(conversation)
    for turn in range(3):
        Job.objects.filter(chat_message__conversation=conversation).update(status="succeeded", output_text="an answer")
        owner_client.post(reverse("conversation", args=[conversation.id]), {"content": f"turn {turn}", "model": "echo"})

    assert queries_to_show(conversation) == one_turn


def test_another_users_conversation_is_a_404(owner_client, client, owner, outsider, echo_model):
    _start(owner_client)
    conversation = Conversation.objects.get(owner=owner)
    client.force_login(outsider)
    for name in ("conversation",):
        assert client.get(reverse(name, args=[conversation.id])).status_code == 404
    for name in ("conversation-regenerate", "conversation-rename", "conversation-delete"):
        assert client.post(reverse(name, args=[conversation.id]), {"title": "x"}).status_code == 404
    assert Conversation.objects.filter(id=conversation.id, title="hello there").exists()


def test_rename_and_delete(owner_client, owner, echo_model):
    _start(owner_client)
    conversation = Conversation.objects.get(owner=owner)
    owner_client.post(reverse("conversation-rename", args=[conversation.id]), {"title": "  Greetings  "})
    conversation.refresh_from_db()
    assert conversation.title == "Greetings"
    job_id = conversation.messages.last().job_id
    owner_client.post(reverse("conversation-delete", args=[conversation.id]))
    assert not Conversation.objects.exists()
    assert Job.objects.get(id=job_id).status == "canceled"  # the job stays in history, stopped


def test_regenerate_replaces_the_last_answer_with_a_new_job(
    owner_client, owner, echo_model, django_capture_on_commit_callbacks
):
    _start(owner_client)
    conversation = Conversation.objects.get(owner=owner)
    first_job = conversation.messages.last().job_id
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("conversation-regenerate", args=[conversation.id]))
    messages = list(conversation.messages.all())
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[-1].job_id != first_job
    assert Job.objects.get(id=first_job).status == "canceled"  # stopped, and kept in history
    assert Message.objects.count() == 2


@pytest.mark.parametrize("status", ["queued", "running"])
def test_regenerate_at_the_concurrency_limit_takes_the_old_answers_place(
    owner_client, owner, echo_model, django_capture_on_commit_callbacks, status
):
    from accounts.models import Plan

    owner.plan = Plan.objects.create(name="one at a time", concurrent_jobs=1, tokens_per_day=1000)
    owner.save()
    _start(owner_client, max_tokens="500")  # reserves 503 of the day's 1000: two such jobs would not fit
    conversation = Conversation.objects.get(owner=owner)
    old = conversation.messages.last().job_id
    Job.objects.filter(id=old).update(status=status)

    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("conversation-regenerate", args=[conversation.id]))

    assert conversation.messages.last().job_id != old
    assert Job.objects.get(id=old).cancel_requested_at is not None


def test_a_refused_regenerate_leaves_the_answer_running(
    owner_client, owner, echo_model, django_capture_on_commit_callbacks
):
    from accounts.models import Plan
    from inference import streams

    owner.plan = Plan.objects.create(name="one a minute", requests_per_minute=1)
    owner.save()
    _start(owner_client)
    conversation = Conversation.objects.get(owner=owner)
    answer = conversation.messages.last()
    Job.objects.filter(id=answer.job_id).update(status="running")  # a worker is writing it

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(reverse("conversation-regenerate", args=[conversation.id]), follow=True)

    assert "job requests per minute" in response.text
    job = Job.objects.get(id=answer.job_id)
    assert (job.status, job.cancel_requested_at) == ("running", None)
    assert not streams.cancel_requested(job.id), "the worker must not be told to stop"
    assert list(conversation.messages.values_list("job_id", flat=True)) == [None, answer.job_id]
