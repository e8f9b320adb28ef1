from django.contrib import admin, messages

from ops.audit import audit_record
from ops.models import AuditEntry
from webhooks.models import WebhookDelivery
from webhooks.redelivery import webhook_redeliver


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is written by `ops.audit.audit_record` and never edited."""

    list_display = ("created_at", "actor_username", "action", "target_type", "target_id", "target_repr")
    list_filter = ("action", "target_type")
    search_fields = ("actor_username", "action", "=target_id", "target_repr", "details")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The webhooks app's delivery list, with the operator's redeliver action (audited) added.
_DeliveryAdmin = type(admin.site._registry[WebhookDelivery])
admin.site.unregister(WebhookDelivery)


@admin.register(WebhookDelivery)
class WebhookDeliveryOpsAdmin(_DeliveryAdmin):
    actions = ["redeliver"]

    @admin.action(description="Redeliver selected webhook deliveries", permissions=["change"])
    def redeliver(self, request, queryset):
        sent = 0
        for delivery in queryset:
            if webhook_redeliver(delivery=delivery):
                audit_record(actor=request.user, action="webhook.redeliver", target=delivery)
                sent += 1
        messages.success(request, f"Redelivering {sent} delivery(ies); pending ones were left alone.")
