"""The operators' consoles for models and jobs. Every action is audited."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import DurationField, ExpressionWrapper, F
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from inference import streams
from inference.backends import BACKENDS
from inference.errors import DjinnError
from inference.models import AIModel, Job, JobStatus
from inference.services.events import job_replay_events
from inference.services.jobs import job_cancel
from inference.services.operator import job_requeue, job_retry, model_trial
from ops import admin_ids
from ops.admin_audit import AuditedAdminMixin
from ops.audit import audit_record

TRIAL_BUDGET_SECONDS = 20.0


def _seconds(delta: timedelta | None) -> str:
    return "-" if delta is None else f"{delta.total_seconds():.2f}s"


def _backend_choices() -> list[tuple[str, str]]:
    """Each registered backend, with the first line of its docstring: what it serves, from where."""
    backends = [(key, f"{key} — {_first_line(cls.__doc__)}") for key, cls in BACKENDS.items()]
    return [("", "---------"), *sorted(backends)]  # none picked for a new model: the operator chooses


def _first_line(text: str | None) -> str:
    return (text or "").strip().partition("\n")[0]


def _config_keys_by_backend() -> str:
    """Every key each backend's `config` takes, read from its Config model: the operator's reference."""
    sections = []
    for key, cls in sorted(BACKENDS.items()):
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    "required" if field.is_required() else json.dumps(field.get_default(call_default_factory=True)),
                    field.description or "",
                )
                for name, field in cls.Config.model_fields.items()
            ),
        )
        sections.append(format_html("<details><summary>{}</summary><table>{}</table></details>", key, rows))
    return format_html(
        "Backend settings as a JSON object, checked by the backend on save. The keys of each backend "
        "(name, default, meaning):{}",
        format_html_join("", "{}", ((section,) for section in sections)),
    )


class AIModelForm(forms.ModelForm):
    """The backend picked from those registered, and the config keys of each shown beside its field."""

    backend = forms.ChoiceField(choices=_backend_choices)

    class Meta:
        model = AIModel
        fields = (
            "slug",
            "display_name",
            "description",
            "task",
            "backend",
            "config",
            "default_params",
            "max_input_chars",
            "max_output_tokens",
            "queue",
            "enabled",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["config"].help_text = _config_keys_by_backend()


@admin.register(AIModel)
class AIModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Saving runs AIModel.clean(), so a backend config that does not validate is refused."""

    audit_name = "model"
    form = AIModelForm
    list_display = ("slug", "display_name", "task", "backend", "queue", "enabled", "updated_at")
    list_filter = ("task", "backend", "enabled", "queue")
    search_fields = ("slug", "display_name")
    prepopulated_fields = {"slug": ("display_name",)}
    actions = ["enable_models", "disable_models", "test_model"]

    def response_add(self, request, obj, post_url_continue=None):
        messages.info(
            request,
            f"Model files and servers are checked where the workers run, when they load {obj.slug}: "
            "run “Test this model” on it from the list of models to see it answer.",
        )
        return super().response_add(request, obj, post_url_continue)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        action = "model.enable" if enabled else "model.disable"
        for model in queryset:
            if model.enabled != enabled:
                AIModel.objects.filter(pk=model.pk).update(enabled=enabled)
                audit_record(actor=request.user, action=action, target=model)
        word = "Enabled" if enabled else "Disabled"
        messages.success(request, f"{word} {queryset.count()} model(s).")

    @admin.action(description="Enable selected models", permissions=["change"])
    def enable_models(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected models", permissions=["change"])
    def disable_models(self, request, queryset):
        self._set_enabled(request, queryset, False)

    @admin.action(description="Test this model (runs a short job and waits for it)", permissions=["change"])
    def test_model(self, request, queryset):
        # Sync views share one thread per daphne process: the whole action waits TRIAL_BUDGET_SECONDS at most.
        deadline = time.monotonic() + TRIAL_BUDGET_SECONDS
        trials = []
        for model in queryset[:5]:
            try:
                trial = model_trial(model=model, user=request.user, timeout=max(0.0, deadline - time.monotonic()))
            except DjinnError as exc:
                messages.error(request, f"{model.slug}: {exc.message}")
                continue
            audit_record(
                actor=request.user,
                action="model.test",
                target=model,
                details={"job": str(trial.job.id), "status": trial.job.status, "finished": trial.finished},
            )
            trials.append(trial)
        if not trials:
            return None
        context = {**self.admin_site.each_context(request), "title": "Model test", "trials": trials, "opts": self.opts}
        return TemplateResponse(request, "admin/inference/aimodel/test_results.html", context)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs are history: operators cancel, retry or requeue them here, and never delete them."""

    # Why a job failed next to its status, and a short creation time: at 1280 px with both sidebars
    # open about seven columns show before the list scrolls sideways.
    list_display = (
        "short_id",
        "owner_jobs",
        "model",
        "status",
        "error_code",
        "created",
        "queue_wait",
        "time_to_first_token",
        "duration",
        "tokens",
        "attempt",
        "client",
    )
    list_display_links = ("short_id",)
    # No date hierarchy and no list of owners: each read every job on every page load (0.3-0.6 s at a
    # million jobs). "Created" filters by date; an owner's name in the list filters by them.
    list_filter = ("status", "model", "client", "task", "created_at")
    search_fields = ("=id", "owner__username", "input_text", "error_code")
    list_select_related = ("owner", "model")
    actions = ["cancel_jobs", "retry_jobs", "requeue_jobs"]
    change_form_template = "admin/inference/job/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "owner", "model", "task", "client", "status", "attempt", "max_attempts", "worker")}),
        ("Input", {"fields": ("input_pretty",)}),
        ("Output", {"fields": ("output_pretty", "error_code", "error_message", "prompt_tokens", "completion_tokens")}),
        (
            "Timings",
            {
                "fields": (
                    "created_at",
                    "enqueued_at",
                    "started_at",
                    "first_token_at",
                    "finished_at",
                    "heartbeat_at",
                    "deadline_at",
                    "cancel_requested_at",
                    "queue_wait",
                    "time_to_first_token",
                    "duration",
                )
            },
        ),
        ("Event timeline", {"fields": ("timeline",)}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _queue_wait=ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField()),
                _ttft=ExpressionWrapper(F("first_token_at") - F("started_at"), output_field=DurationField()),
                _duration=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()),
                _tokens=F("prompt_tokens") + F("completion_tokens"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        computed = ["input_pretty", "output_pretty", "queue_wait", "time_to_first_token", "duration", "timeline"]
        return [field.name for field in self.model._meta.fields] + computed

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Usage, quotas and /metrics count stored jobs; a deleted job would rewrite history without a trace.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job_actions = [("cancel_jobs", "Cancel"), ("retry_jobs", "Retry"), ("requeue_jobs", "Requeue")]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "job_actions": job_actions})

    def get_search_results(self, request, queryset, search_term):
        """Also finds jobs by the start of their id, as the list shows it: a range of the primary key."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if (by_prefix := admin_ids.id_prefix_match(search_term)) is not None:
            found |= queryset.filter(by_prefix)
        return found, may_have_duplicates

    @admin.display(description="Job", ordering="id")
    def short_id(self, job):
        return admin_ids.short_id(job.id)

    @admin.display(description="Owner", ordering="owner__username")
    def owner_jobs(self, job):
        return format_html(
            '<a href="?owner__id__exact={}" title="Only the jobs of {}">{}</a>', job.owner_id, job.owner, job.owner
        )

    @admin.display(description="Created", ordering="created_at")
    def created(self, job):
        """To the second, as the logs have it; the year only when it is not this one."""
        moment = timezone.localtime(job.created_at)
        shape = "M j, H:i:s" if moment.year == timezone.localtime().year else "M j Y, H:i:s"
        return format_html('<time datetime="{}">{}</time>', moment.isoformat(), date_format(moment, shape))

    @admin.display(description="Queue wait", ordering="_queue_wait")
    def queue_wait(self, job):
        return _seconds(getattr(job, "_queue_wait", None))

    @admin.display(description="TTFT", ordering="_ttft")
    def time_to_first_token(self, job):
        return _seconds(getattr(job, "_ttft", None))

    @admin.display(description="Duration", ordering="_duration")
    def duration(self, job):
        return _seconds(getattr(job, "_duration", None))

    @admin.display(description="Tokens", ordering="_tokens")
    def tokens(self, job):
        return f"{job.prompt_tokens} + {job.completion_tokens}"

    @admin.display(description="Input")
    def input_pretty(self, job):
        return format_html("<pre>{}</pre>", json.dumps(job.input, indent=2, ensure_ascii=False))

    @admin.display(description="Output")
    def output_pretty(self, job):
        if job.output_json is not None:
            return format_html("<pre>{}</pre>", json.dumps(job.output_json, indent=2)[:20000])
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', job.output_text or "(none)")

    @admin.display(description="Events")
    def timeline(self, job):
        source = "live event log"
        try:
            events = streams.read_events(job.id, count=500)
        except Exception:
            events = []
        if not events:
            source = "rebuilt from the stored job" if job.is_finished else "no events yet"
            events = job_replay_events(job) if job.is_finished else []
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((e.seq, e.attempt, e.type, json.dumps(e.data, ensure_ascii=False)[:300]) for e in events),
        )
        return format_html(
            '<p>{}</p><table class="job-timeline"><tr><th>#</th><th>attempt</th><th>type</th><th>data</th></tr>'
            "{}</table>",
            source,
            rows,
        )

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        canceled = asked = skipped = 0
        for job in queryset:
            before, already_asked = job.status, job.cancel_requested_at is not None
            job = job_cancel(job=job)
            # Counted by what the cancel did: a listed job may have ended, or started, since it was read.
            if job.status == JobStatus.CANCELED and before != JobStatus.CANCELED:
                canceled += 1
            elif job.status == JobStatus.RUNNING and job.cancel_requested_at is not None and not already_asked:
                asked += 1  # it stops between two chunks, keeping its partial output
            else:
                skipped += 1  # already finished, or already asked to stop: nothing changed
                continue
            audit_record(
                actor=request.user,
                action="job.cancel",
                target=job,
                details={"status_before": before, "status_after": job.status},
            )
        parts = [f"Canceled {canceled} job(s)."]
        if asked:
            parts.append(f"Asked {asked} running job(s) to stop.")
        if skipped:
            parts.append(f"Skipped {skipped} job(s) that had already finished or been asked to stop.")
        level = messages.SUCCESS if canceled or asked else messages.WARNING
        messages.add_message(request, level, " ".join(parts))

    @admin.action(description="Retry selected jobs (a new job with the same input)", permissions=["change"])
    def retry_jobs(self, request, queryset):
        made = 0
        for job in queryset.select_related("model", "owner"):
            try:
                new_job = job_retry(job=job)
            except DjinnError as exc:
                messages.error(request, f"{job.id}: {exc.message}")
                continue
            audit_record(actor=request.user, action="job.retry", target=job, details={"new_job": str(new_job.id)})
            made += 1
        if made:
            messages.success(request, f"Submitted {made} new job(s).")

    @admin.action(description="Requeue selected stuck jobs", permissions=["change"])
    def requeue_jobs(self, request, queryset):
        done = 0
        for job in queryset.select_related("model"):
            try:
                outcome = job_requeue(job=job)
            except DjinnError as exc:
                messages.warning(request, f"{job.id}: {exc.message}")
                continue
            audit_record(
                actor=request.user,
                action="job.requeue",
                target=job,
                details={"outcome": outcome, "attempt": job.attempt},
            )
            done += 1
        if done:
            messages.success(request, f"Requeued {done} job(s).")
