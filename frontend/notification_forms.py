"""The notification preferences form: the page's fields, checked again by `notifications.services`."""

from __future__ import annotations

from django import forms

from notifications.models import Event


class SecretURLInput(forms.URLInput):
    """A URL input that never shows a value: the stored URL is a credential, and a refused one is typed again."""

    def format_value(self, value: object) -> None:
        return None


class NotificationPreferencesForm(forms.Form):
    email_enabled = forms.BooleanField(required=False, label="Email me")
    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        label="Webhook URL",
        help_text='Slack-compatible (a POST of {"text": ...}); https to a public host only.',
        widget=SecretURLInput(attrs={"placeholder": "https://hooks.example.org/services/…", "autocomplete": "off"}),
    )
    remove_webhook = forms.BooleanField(required=False, label="Remove the webhook")
    browser_enabled = forms.BooleanField(required=False, label="Show notifications in this browser on open pages")
    events = forms.MultipleChoiceField(
        required=False, choices=Event.choices, widget=forms.CheckboxSelectMultiple, label="Tell me when"
    )

    def __init__(self, *args, webhook_host: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if webhook_host:
            self.fields["webhook_url"].widget.attrs["placeholder"] = "Leave empty to keep the current one"

    def clean(self) -> dict:
        """`webhook_url` as the service takes it: None keeps the current one, "" removes it, a URL replaces it."""
        cleaned = super().clean()
        url = (cleaned.get("webhook_url") or "").strip()
        remove = cleaned.pop("remove_webhook", False)
        if remove and url:
            self.add_error("remove_webhook", "Either remove the webhook or give a new URL, not both.")
        cleaned["webhook_url"] = "" if remove else (url or None)
        return cleaned
