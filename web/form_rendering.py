"""How every form on the site renders its fields (settings.FORM_RENDERER)."""

from __future__ import annotations

from typing import Any

from django.forms import BoundField
from django.forms.renderers import DjangoTemplates


class FirstErrorFocusedBoundField(BoundField):
    """After a refused submit, the cursor waits in the first field to fix, not in the form's first field.

    Django's account forms autofocus their first field (the username), so a sign-up refused for
    its email put the cursor back in the username, and a screen reader read that field first.
    """

    def build_widget_attrs(self, attrs: dict[str, Any], widget=None) -> dict[str, Any]:
        attrs = super().build_widget_attrs(attrs, widget)
        if self.form.is_bound:
            first_wrong = next((name for name in self.form.fields if name in self.form.errors), None)
            if first_wrong is not None:  # only errors about the whole form: the form's own focus stands
                attrs["autofocus"] = self.name == first_wrong  # False leaves the attribute out
        return attrs


class FormRenderer(DjangoTemplates):
    bound_field_class = FirstErrorFocusedBoundField
