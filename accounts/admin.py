from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiKey, Plan, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = (*BaseUserAdmin.list_display, "plan")
    list_filter = (*BaseUserAdmin.list_filter, "plan")
    list_select_related = ("plan",)
    fieldsets = (*BaseUserAdmin.fieldsets, ("Quotas", {"fields": ("plan",)}))


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "concurrent_jobs", "requests_per_minute", "tokens_per_day", "updated_at")
    search_fields = ("name",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username", "user__email")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    raw_id_fields = ("user",)

    def has_add_permission(self, request) -> bool:
        # Keys are issued by `createapikey` or the API, which show the secret once.
        return False
