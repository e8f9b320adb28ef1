from django import forms
from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from ops import admin_ids
from ops.admin_audit import AuditedAdminMixin
from webhooks.models import JobWebhook, WebhookAttempt, WebhookDelivery


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "webhook_delivery"
    list_display = (
        "short_id",
        "owner",
        "job_link",
        "event_type",
        "status",
        "attempts",
        "last_answer",
        "created_at",
        "delivered_at",
        "next_attempt_at",
    )
    list_display_links = ("short_id",)
    list_filter = ("status", "event")
    search_fields = ("=id", "=job__id", "owner__username", "url")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    inlines = [WebhookAttemptInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("payload")  # the job as sent: a page of them is a lot to read

    def get_search_results(self, request, queryset, search_term):
        """Also by the start of the delivery's or its job's id, as the lists show them."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        for field in ("id", "job__id"):
            if (by_prefix := admin_ids.id_prefix_match(search_term, field)) is not None:
                found |= queryset.filter(by_prefix)
        return found, may_have_duplicates

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Delivery", ordering="id")
    def short_id(self, delivery):
        return admin_ids.short_id(delivery.id)

    @admin.display(description="Job", ordering="job_id")
    def job_link(self, delivery):
        return _job_link(delivery.job_id)

    @admin.display(description="Event", ordering="event")
    def event_type(self, delivery):
        return delivery.event_type

    @admin.display(description="Last answer")
    def last_answer(self, delivery):
        return delivery.last_answer or "—"


@admin.register(JobWebhook)
class JobWebhookAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "job_webhook"
    list_display = ("job_link", "url", "events")
    search_fields = ("=job__id", "url")
    raw_id_fields = ("job",)
    # A URL typed without a scheme means https (Django 6's default; 5.2 still assumes http).
    formfield_overrides = {models.URLField: {"form_class": forms.URLField, "assume_scheme": "https"}}

    @admin.display(description="Job", ordering="job_id")
    def job_link(self, hook):
        return _job_link(hook.job_id)


def _job_link(job_id):
    """The job's short id, linked to its page in the jobs console."""
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:inference_job_change", args=[job_id]), admin_ids.short_id(job_id)
    )
