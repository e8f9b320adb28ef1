"""The end users' pages. Views stay thin: forms check input, services act, selectors read."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_POST

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from inference.errors import DjinnError
from inference.job_errors import job_error_message
from inference.models import JobClient, JobStatus, Task
from inference.services.admission import QuotaExceeded, job_create
from inference.usage import usage_for_user
from inference.validation import GENERATION_TASKS
from web import selectors, services, throttle
from web.forms import (
    ApiKeyForm,
    ChatForm,
    ClassificationForm,
    EmbeddingForm,
    HistoryFilterForm,
    RenameForm,
    SignUpForm,
    ThrottledLoginForm,
    client_address,
    wait_in_words,
)
from web.models import Role
from web.timings import job_timings
from webhooks.selectors import job_webhook_with_deliveries

HISTORY_PAGE_SIZE = 20
FAVICON_REDIRECT_MAX_AGE_SECONDS = 24 * 60 * 60


def error_in_words(exc: DjinnError) -> str:
    """A refused job, told the way a person would want to hear it."""
    if isinstance(exc, QuotaExceeded):
        return f"{exc.message} Try again in {wait_in_words(exc.retry_after)}."
    if exc.code == "model_disabled":
        return "This model is switched off right now. Pick another one, or try again later."
    if exc.code == "model_not_found":
        return "This model does not exist any more. Pick another one."
    return f"The model cannot take this request: {exc.message}"


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico wherever a page names no icon (the API docs, JSON opened in a tab).

    Not a permanent redirect: browsers keep those for ever, and the icon's address (its content's
    hash, in production) changes with the icon."""
    response = redirect(static("favicon.svg"))
    patch_cache_control(response, public=True, max_age=FAVICON_REDIRECT_MAX_AGE_SECONDS)
    return response


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat")
    return render(request, "web/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = throttle.attempt(action="signup", subject=client_address(request), limit=settings.WEB_SIGNUPS_PER_HOUR)
        if wait is None:
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}. Ask a model anything.")
            return redirect("chat")
        form.add_error(None, f"Too many new accounts from your network. Try again in {wait_in_words(wait)}.")
        return _too_many(render(request, "registration/signup.html", {"form": form}), wait)
    return render(request, "registration/signup.html", {"form": form})


def _too_many(response: HttpResponse, retry_after: float) -> HttpResponse:
    """`response` as the refusal of a limit: 429, saying when to come back."""
    response.status_code = 429
    response["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


class LoginView(auth_views.LoginView):
    """Django's log-in page; a username and address pair refused after repeated failures is a 429."""

    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        return response if form.retry_after is None else _too_many(response, form.retry_after)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, sending a few mails per hour per client address and per mailbox at most:
    nobody can use it to flood a mailbox or the mail server."""

    def form_valid(self, form):
        address = client_address(self.request)
        mailbox = form.cleaned_data["email"]
        wait = throttle.attempt(
            action="password-reset", subject=address, limit=settings.WEB_PASSWORD_RESETS_PER_HOUR
        ) or throttle.attempt(action="password-reset-mailbox", subject=mailbox, limit=3)
        if wait is None:
            return super().form_valid(form)
        form.add_error(None, f"Too many reset requests. Try again in {wait_in_words(wait)}.")
        return _too_many(self.render_to_response(self.get_context_data(form=form)), wait)


# ------------------------------------------------------------------------------
# Chat
# ------------------------------------------------------------------------------


def _chat_context(request, *, conversation=None, form=None, error=""):
    models = selectors.chat_models()
    if form is None:
        if conversation is not None:
            initial = {
                "model": conversation.model.slug,
                "temperature": conversation.temperature,
                "max_tokens": conversation.max_tokens,
            }
        else:
            initial = {"model": selectors.chat_model_for_new_conversation(user=request.user)}
        form = ChatForm(initial=initial)
    chat_messages = list(conversation.messages.select_related("job__model")) if conversation else []
    return {
        "form": form,
        "models": models,
        "conversation": conversation,
        "chat_messages": chat_messages,
        "conversations": selectors.conversations_for_user(user=request.user)[:50],
        "error": error,
        "last_is_answer": bool(chat_messages) and chat_messages[-1].role == Role.ASSISTANT,
    }


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    """A new conversation: its first message starts it."""
    if request.method == "POST":
        form = ChatForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                conversation = services.conversation_start(
                    user=request.user,
                    model=data["model"],
                    content=data["content"],
                    temperature=data["temperature"],
                    max_tokens=data["max_tokens"],
                )
            except DjinnError as exc:
                return render(request, "web/chat.html", _chat_context(request, form=form, error=error_in_words(exc)))
            return redirect("conversation", conversation_id=conversation.id)
        return render(request, "web/chat.html", _chat_context(request, form=form))
    return render(request, "web/chat.html", _chat_context(request))


@login_required
def conversation_detail(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = selectors.conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    if request.method == "POST":
        form = ChatForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.message_send(
                    conversation=conversation,
                    content=data["content"],
                    model=data["model"],
                    temperature=data["temperature"],
                    max_tokens=data["max_tokens"],
                )
            except DjinnError as exc:
                conversation.refresh_from_db()
                context = _chat_context(request, conversation=conversation, form=form, error=error_in_words(exc))
                return render(request, "web/chat.html", context, status=200)
            return redirect("conversation", conversation_id=conversation.id)
        return render(request, "web/chat.html", _chat_context(request, conversation=conversation, form=form))
    return render(request, "web/chat.html", _chat_context(request, conversation=conversation))


@login_required
@require_POST
def conversation_regenerate(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = selectors.conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    try:
        services.answer_regenerate(conversation=conversation)
    except DjinnError as exc:
        messages.error(request, error_in_words(exc))
    return redirect("conversation", conversation_id=conversation.id)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = selectors.conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        messages.success(request, "Conversation renamed.")
    else:
        messages.error(request, "A title cannot be empty.")
    return redirect("conversation", conversation_id=conversation.id)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = selectors.conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    services.conversation_delete(conversation=conversation)
    messages.success(request, "Conversation deleted. Its jobs stay in your history.")
    return redirect("chat")


# ------------------------------------------------------------------------------
# History
# ------------------------------------------------------------------------------


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    feed_position = selectors.job_feed_position(user=request.user)  # before the jobs are read
    form = HistoryFilterForm(
        request.GET or None, models=selectors.history_models(user=request.user), statuses=JobStatus.choices
    )
    form.is_valid()
    # A field that does not validate shows its error and is left out; the valid ones still filter.
    filters = getattr(form, "cleaned_data", {})
    jobs = selectors.jobs_search(
        user=request.user,
        query=filters.get("q", ""),
        model=filters.get("model", ""),
        status=filters.get("status", ""),
        since=filters.get("since"),
        until=filters.get("until"),
    )
    page = Paginator(jobs, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "web/history.html",
        {"form": form, "page": page, "query": query.urlencode(), "feed_position": feed_position},
    )


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    feed_position = selectors.job_feed_position(user=request.user)  # before the job is read
    job = selectors.job_get_for_user_or_404(user=request.user, job_id=job_id)
    conversation = getattr(getattr(job, "chat_message", None), "conversation", None)
    webhook, deliveries = job_webhook_with_deliveries(job=job)
    context = {
        "job": job,
        "conversation": conversation,
        "webhook": webhook,
        "deliveries": deliveries,
        # Text is written token by token: a page opened while it runs shows it as it comes.
        "live_tasks": GENERATION_TASKS,
        "feed_position": feed_position,
    }
    return render(request, "web/job_detail.html", context)


@login_required
@require_GET
def job_json(request: HttpRequest, job_id) -> JsonResponse:
    """A job's state for the playgrounds' polling."""
    job = selectors.job_get_for_user_or_404(user=request.user, job_id=job_id)
    error_message = job_error_message(code=job.error_code, message=job.error_message, user=request.user)
    return JsonResponse(
        {
            "id": str(job.id),
            "status": job.status,
            "finished": job.is_finished,
            "output_text": job.output_text,
            "output": job.output_json,
            "error": {"code": job.error_code, "message": error_message} if job.error_code else None,
            "usage": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens},
            # As the job's page shows them: a running job's page fills them in as they become known.
            "timings": job_timings(job),
        }
    )


# ------------------------------------------------------------------------------
# API keys and usage
# ------------------------------------------------------------------------------


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        issued = api_key_create(user=request.user, name=form.cleaned_data["name"])
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(user=request.user)
    response = render(request, "web/keys.html", {"form": form, "keys": keys, "issued": issued})
    if issued is not None:
        response["Cache-Control"] = "no-store"  # the secret must not come back from a cache
    return response


@login_required
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    api_key_revoke(api_key=api_key)
    messages.success(request, f"Key {api_key.name or api_key.prefix} is revoked; requests using it now fail.")
    return redirect("keys")


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    report = usage_for_user(user=request.user, days=14)
    quota = report["plan"]["tokens_per_day"]
    peak = max([day["total_tokens"] for day in report["daily"]] + [quota or 0, 1])
    for day in report["daily"]:
        day["percent"] = round(100 * day["total_tokens"] / peak, 1)
    return render(
        request,
        "web/usage.html",
        {"usage": report, "quota": quota, "quota_percent": round(100 * quota / peak, 1) if quota else None},
    )


# ------------------------------------------------------------------------------
# Playgrounds
# ------------------------------------------------------------------------------


def _playground(request, *, task: str, form_class, template: str, build_input) -> HttpResponse:
    models = selectors.models_for_task(task)
    if request.method == "POST":
        form = form_class(request.POST)
        form.fields["model"].queryset = models
        if not form.is_valid():
            errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
            return JsonResponse({"error": "Please correct the fields above.", "fields": errors}, status=400)
        try:
            job = job_create(
                user=request.user,
                model=form.cleaned_data["model"],
                input=build_input(form.cleaned_data),
                client=JobClient.WEB,
            )
        except DjinnError as exc:
            refusal = JsonResponse({"error": error_in_words(exc)}, status=exc.status)
            return _too_many(refusal, exc.retry_after) if isinstance(exc, QuotaExceeded) else refusal
        return JsonResponse({"job": str(job.id), "poll": reverse("job-json", args=[job.id])}, status=202)
    form = form_class()
    form.fields["model"].queryset = models
    return render(request, template, {"form": form, "models": models})


@login_required
def playground_embeddings(request: HttpRequest) -> HttpResponse:
    return _playground(
        request,
        task=Task.EMBEDDING,
        form_class=EmbeddingForm,
        template="web/playground_embeddings.html",
        build_input=lambda data: {"input": [data["first"], data["second"]], "normalize": True},
    )


@login_required
def playground_classification(request: HttpRequest) -> HttpResponse:
    return _playground(
        request,
        task=Task.CLASSIFICATION,
        form_class=ClassificationForm,
        template="web/playground_classification.html",
        build_input=lambda data: {"input": data["text"], "labels": data["labels"]},
    )
