from django import forms
from django.contrib import admin
from django.db import models

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
    list_display = ("id", "owner", "job", "event", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event")
    search_fields = ("=id", "=job__id", "owner__username", "url")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    inlines = [WebhookAttemptInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(JobWebhook)
class JobWebhookAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "job_webhook"
    list_display = ("job", "url", "events")
    search_fields = ("=job__id", "url")
    raw_id_fields = ("job",)
    # A URL typed without a scheme means https (Django 6's default; 5.2 still assumes http).
    formfield_overrides = {models.URLField: {"form_class": forms.URLField, "assume_scheme": "https"}}
