from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from accounts.deactivation import user_disable
from accounts.models import ApiKey, Plan, User
from accounts.quotas import DEFAULT_PLAN_NAME
from accounts.services import api_key_revoke
from ops.admin_audit import AuditedAdminMixin
from ops.audit import audit_record


@admin.register(User)
class UserAdmin(AuditedAdminMixin, BaseUserAdmin):
    # Sign-up asks for no first or last name: their columns were always empty, and pushed these out of view.
    list_display = (
        "username",
        "email",
        "plan_name",
        "is_active",
        "is_staff",
        "date_joined",
        "jobs_total",
        "tokens_total",
    )
    list_filter = (*BaseUserAdmin.list_filter, "plan")
    list_select_related = ("plan",)
    fieldsets = (*BaseUserAdmin.fieldsets, ("Quotas", {"fields": ("plan",)}), ("Usage", {"fields": ("usage",)}))
    readonly_fields = ("usage",)
    actions = ["disable_users"]

    def save_model(self, request, obj, form, change):
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating and obj.pk == request.user.pk:
            obj.is_active = True  # an operator locking themselves out by accident helps nobody
            form.changed_data.remove("is_active")
            messages.error(request, "You cannot disable yourself; the rest of your changes were saved.")
            deactivating = False
        super().save_model(request, obj, form, change)
        if deactivating:
            # Unticking "Active" must stop the user's work exactly as the bulk action does.
            self._disable(request, obj)

    def user_change_password(self, request, id, form_url=""):
        user = self.get_object(request, unquote(id))
        hash_before = user.password if user is not None else None
        response = super().user_change_password(request, id, form_url)
        if user is not None and request.method == "POST":
            user.refresh_from_db(fields=["password"])
            if user.password != hash_before:
                # Only that it happened: never the password, not even its hash.
                audit_record(
                    actor=request.user,
                    action="user.password_set",
                    target=user,
                    details={"usable": user.has_usable_password()},
                )
        return response

    def _disable(self, request, user: User) -> None:
        outcome = user_disable(user=user)
        audit_record(
            actor=request.user,
            action="user.disable",
            target=user,
            details={"keys_revoked": outcome.keys_revoked, "jobs_canceled": outcome.jobs_canceled},
        )
        messages.success(
            request,
            f"Disabled {user}: {outcome.keys_revoked} key(s) revoked, {outcome.jobs_canceled} job(s) canceled.",
        )

    def get_queryset(self, request):
        # Counted per listed user by subqueries, which PostgreSQL runs for the page's rows only (after
        # its LIMIT): a join and GROUP BY over every job took 1.7 s a page at a million jobs, twice more
        # for the page counts. The job model is reached through the relation: accounts imports nothing
        # from inference.
        users_jobs = self.model._meta.get_field("jobs").related_model.objects.filter(owner=OuterRef("pk"))
        users_jobs = users_jobs.order_by().values("owner")
        return (
            super()
            .get_queryset(request)
            .annotate(
                _jobs_total=Coalesce(Subquery(users_jobs.annotate(jobs=Count("pk")).values("jobs")), 0),
                _tokens_total=Coalesce(
                    Subquery(
                        users_jobs.annotate(tokens=Sum(F("prompt_tokens") + F("completion_tokens"))).values("tokens")
                    ),
                    0,
                ),
            )
        )

    @admin.display(description="Plan", ordering="plan__name", empty_value=f"{DEFAULT_PLAN_NAME} (settings)")
    def plan_name(self, user):
        return user.plan

    @admin.display(description="Jobs", ordering="_jobs_total")
    def jobs_total(self, user):
        return user._jobs_total

    @admin.display(description="Tokens", ordering="_tokens_total")
    def tokens_total(self, user):
        return user._tokens_total

    @admin.display(description="Usage (last 7 days)")
    def usage(self, user):
        if user.pk is None:
            return "-"
        from inference.usage import usage_for_user  # inference depends on accounts, not the other way

        usage = usage_for_user(user=user)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((d["date"], d["jobs"], d["prompt_tokens"], d["completion_tokens"]) for d in usage["daily"]),
        )
        current = usage["current"]
        remaining = current["tokens_remaining_today"]
        return format_html(
            "<p>Plan {}: {} active job(s), {} token(s) today, {}.</p>"
            "<table><tr><th>day</th><th>jobs</th><th>prompt tokens</th><th>completion tokens</th></tr>{}</table>",
            usage["plan"]["name"],
            current["active_jobs"],
            current["tokens_today"],
            "no daily token limit" if remaining is None else f"{remaining} left today",
            rows,
        )

    @admin.action(description="Disable selected users (revoke keys, cancel jobs)", permissions=["change"])
    def disable_users(self, request, queryset):
        for user in queryset:
            if user.pk == request.user.pk:
                messages.error(request, "You cannot disable yourself.")
                continue
            self._disable(request, user)


@admin.register(Plan)
class PlanAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "concurrent_jobs", "requests_per_minute", "tokens_per_day", "updated_at")
    search_fields = ("name",)


class KeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    # Revoked or not leads: a column at the end of a wide list was out of view.
    list_display = ("prefix", "name", "user", "state", "created_at", "last_used_at")
    list_filter = (KeyStateFilter, "revoked_at")
    search_fields = ("prefix", "name", "user__username", "user__email")
    # A key's owner and revocation change only through "Revoke selected keys" (api_key_revoke), which
    # also closes the sockets the key holds: editing revoked_at by hand would skip that, or un-revoke it.
    readonly_fields = ("prefix", "user", "revoked_at", "created_at", "last_used_at")
    actions = ["revoke_keys"]

    @admin.display(description="State", ordering="revoked_at")
    def state(self, api_key):
        if api_key.revoked_at is None:
            return "Active"
        return f"Revoked {date_format(timezone.localtime(api_key.revoked_at), 'DATETIME_FORMAT')}"

    def has_add_permission(self, request) -> bool:
        # Keys are issued by `createapikey` or the API, which show the secret once.
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            audit_record(actor=request.user, action="apikey.revoke", target=api_key)
            revoked += 1
        messages.success(request, f"Revoked {revoked} key(s).")
