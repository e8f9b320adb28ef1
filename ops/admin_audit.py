"""A ModelAdmin mixin that audits what operators save and delete through the admin's own forms."""

from __future__ import annotations

from ops.audit import audit_record


def _json_safe(value):
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


class AuditedAdminMixin:
    """Records `<model>.create|change|delete` with the changed fields for every admin save and delete."""

    audit_name = ""  # the action's prefix; default: the model's name

    def _audit_action(self, verb: str) -> str:
        return f"{self.audit_name or self.model._meta.model_name}.{verb}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and not form.changed_data:
            return
        changed = {name: _json_safe(form.cleaned_data.get(name)) for name in form.changed_data}
        for name in [name for name in changed if "password" in name]:
            changed[name] = "(set)"  # never in the log, not even hashed
        audit_record(
            actor=request.user,
            action=self._audit_action("change" if change else "create"),
            target=obj,
            details={"changed": changed},
        )

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action=self._audit_action("delete"), target=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(actor=request.user, action=self._audit_action("delete"), target=obj)
        super().delete_queryset(request, queryset)
