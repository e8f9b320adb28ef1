from django.contrib import admin

from ops.admin_audit import AuditedAdminMixin
from web.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("role", "content", "job", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "conversation"
    list_display = ("title", "owner", "model", "updated_at")
    list_filter = ("model",)
    search_fields = ("title", "owner__username")
    readonly_fields = ("id", "owner", "created_at", "updated_at")
    raw_id_fields = ("model",)
    inlines = [MessageInline]
