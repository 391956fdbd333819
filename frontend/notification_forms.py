"""The notification preferences form: the page's fields, checked again by `notifications.services`."""

from __future__ import annotations

from django import forms

from notifications.models import Event


class NotificationPreferencesForm(forms.Form):
    email_enabled = forms.BooleanField(required=False, label="Email me")
    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        label="Webhook URL",
        help_text='Slack-compatible (a POST of {"text": ...}); https to a public host only.',
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.org/services/…", "autocomplete": "off"}),
    )
    browser_enabled = forms.BooleanField(required=False, label="Show notifications in this browser on open pages")
    events = forms.MultipleChoiceField(
        required=False, choices=Event.choices, widget=forms.CheckboxSelectMultiple, label="Tell me when"
    )
