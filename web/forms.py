from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from inference.models import AIModel
from web import throttle
from web.selectors import chat_models


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def wait_in_words(seconds: float) -> str:
    seconds = max(1, int(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Used only to reset your password.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        # One account per mailbox: a reset link must not hand out a second account to whoever holds it.
        email = get_user_model().objects.normalize_email(self.cleaned_data["email"])
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account already uses this email address. Log in, or reset your password if you forgot it.",
                code="email_taken",
            )
        return email


class ThrottledLoginForm(AuthenticationForm):
    """Django's log-in form, refusing a username and address pair after repeated failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password do not match an account. Check both and try again.",
        "throttled": "Too many failed attempts. Try again in %(wait)s.",
    }

    retry_after: int | None = None  # seconds, once this pair is refused for its failures

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        retry_after = throttle.login_retry_after(username=username, address=address)
        if retry_after is not None:
            self.retry_after = retry_after
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"wait": wait_in_words(retry_after)}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.login_failed(username=username, address=address)
            raise
        throttle.login_succeeded(username=username, address=address)
        return cleaned


class ModelChoice(forms.ModelChoiceField):
    """A model picker showing each model's display name."""

    def label_from_instance(self, obj: AIModel) -> str:
        return obj.display_name


class ChatForm(forms.Form):
    """A message, the model to answer it, and its parameters within that model's limits."""

    content = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 3}), strip=True)
    model = ModelChoice(
        queryset=AIModel.objects.none(),
        to_field_name="slug",
        empty_label=None,
        error_messages={"invalid_choice": "This model is not available right now. Pick another one."},
    )
    temperature = forms.FloatField(label="Temperature", required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(label="Max tokens", required=False, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = chat_models()
        self.fields["temperature"].widget.attrs.update(step="0.1")

    def clean_content(self) -> str:
        # Browsers send a textarea's line breaks as CRLF: one character each, as the page counted them.
        return self.cleaned_data["content"].replace("\r\n", "\n")

    def clean(self):
        cleaned = super().clean()
        model: AIModel | None = cleaned.get("model")
        if model is None:
            return cleaned
        max_tokens = cleaned.get("max_tokens")
        if max_tokens is not None and max_tokens > model.max_output_tokens:
            self.add_error("max_tokens", f"{model.display_name} writes at most {model.max_output_tokens} tokens.")
        content = cleaned.get("content") or ""
        if len(content) > model.max_input_chars:
            self.add_error(
                "content",
                f"Your message has {len(content)} characters; {model.display_name} reads at most "
                f"{model.max_input_chars}.",
            )
        return cleaned


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, strip=True)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="A name to remember where the key is used.")


class HistoryFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False)
    model = forms.ChoiceField(label="Model", required=False)
    status = forms.ChoiceField(label="Status", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, models=(), statuses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [
            ("", "Any model"),
            *[(m.slug, m.display_name if m.enabled else f"{m.display_name} (switched off)") for m in models],
        ]
        self.fields["status"].choices = [("", "Any status"), *statuses]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "This day comes before the From day.")
        return cleaned

    @property
    def filtering(self) -> bool:
        """Whether any filter applies (an unknown parameter in the address is none)."""
        return any(getattr(self, "cleaned_data", {}).values())


class EmbeddingForm(forms.Form):
    model = ModelChoice(queryset=AIModel.objects.none(), to_field_name="slug", empty_label=None)
    first = forms.CharField(label="First text", widget=forms.Textarea(attrs={"rows": 3}))
    second = forms.CharField(label="Second text", widget=forms.Textarea(attrs={"rows": 3}))


class ClassificationForm(forms.Form):
    model = ModelChoice(queryset=AIModel.objects.none(), to_field_name="slug", empty_label=None)
    text = forms.CharField(label="Text", widget=forms.Textarea(attrs={"rows": 3}))
    labels = forms.CharField(label="Labels", help_text="Comma-separated, at least two.")

    def clean_labels(self):
        labels = [label.strip() for label in self.cleaned_data["labels"].split(",") if label.strip()]
        if len(labels) < 2:
            raise forms.ValidationError("Give at least two labels, separated by commas.")
        if len(set(labels)) != len(labels):
            raise forms.ValidationError("Each label must be different.")
        return labels
