from django.contrib import admin, messages

from inference.models import AIModel, Job
from inference.services.jobs import job_cancel


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = ("slug", "display_name", "task", "backend", "queue", "enabled", "updated_at")
    list_filter = ("task", "backend", "enabled", "queue")
    search_fields = ("slug", "display_name")
    prepopulated_fields = {"slug": ("display_name",)}


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "model", "status", "client", "attempt", "created_at", "finished_at")
    list_filter = ("status", "client", "task", "model")
    search_fields = ("=id", "owner__username", "error_code")
    date_hierarchy = "created_at"
    list_select_related = ("owner", "model")
    raw_id_fields = ("owner",)
    actions = ["cancel_jobs"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            job_cancel(job=job)
        messages.success(request, f"Asked {queryset.count()} job(s) to stop.")
