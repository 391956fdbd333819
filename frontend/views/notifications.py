"""The member's notification preferences: channels (email, webhook, this browser) and the events wanted.

The stored webhook URL is never shown: its host is ("set, to <host>"); an empty input keeps it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from frontend.notification_forms import NotificationPreferencesForm
from notifications import services
from notifications.webhook_urls import WebhookUrlRefused
from portal.errors import InvalidInput


@login_required
@sensitive_post_parameters("webhook_url")
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    current = services.preferences_of(request.user)
    initial = {
        "email_enabled": current.email_enabled,
        "browser_enabled": current.browser_enabled,
        "events": current.events,
    }
    form = NotificationPreferencesForm(request.POST or None, initial=initial, webhook_host=current.webhook_host)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_preferences(user=request.user, **form.cleaned_data)
        except WebhookUrlRefused as exc:
            form.add_error("webhook_url", f"{exc.user_message} ({exc.code})")
        except InvalidInput as exc:
            form.add_error("events", f"{exc.user_message} ({exc.code})")
        else:
            messages.success(request, "Notification preferences saved.")
            return redirect("frontend:notification_preferences")
    return render(
        request,
        "frontend/notification_preferences.html",
        {
            "form": form,
            "email": request.user.email,
            "is_saved": current.pk is not None,
            "webhook_set": current.webhook_set,
            "webhook_host": current.webhook_host,
        },
    )
