"""API endpoints: my notification preferences (the page's twin) and my recent notifications (the pages' poll)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field as NinjaField
from ninja import Query, Router, Schema

from notifications import selectors, services
from notifications.schemas import PreferencesIn, PreferencesOut, RecentOut
from portal.schemas import error_responses

router = Router(tags=["notifications"])


class RecentQuery(Schema):
    after: int = NinjaField(default=0, ge=0, description="Only notifications with a larger id.")


def _preferences_out(request: HttpRequest) -> PreferencesOut:
    preference = services.preferences_of(request.auth)
    return PreferencesOut(
        email_enabled=preference.email_enabled,
        email=request.auth.email,
        webhook_set=preference.webhook_set,
        webhook_host=preference.webhook_host,
        browser_enabled=preference.browser_enabled,
        events=list(preference.events),
    )


@router.get("/notifications/preferences", response=PreferencesOut)
def get_preferences(request: HttpRequest) -> PreferencesOut:
    return _preferences_out(request)


@router.put("/notifications/preferences", response={200: PreferencesOut, **error_responses(422)})
def put_preferences(request: HttpRequest, payload: PreferencesIn) -> PreferencesOut:
    services.save_preferences(
        user=request.auth,
        email_enabled=payload.email_enabled,
        webhook_url=payload.webhook_url,
        browser_enabled=payload.browser_enabled,
        events=[str(event) for event in payload.events],
    )
    return _preferences_out(request)


@router.get("/notifications/recent", response=RecentOut, url_name="notifications_recent")
def recent(request: HttpRequest, query: Query[RecentQuery]) -> RecentOut:
    preference = services.preferences_of(request.auth)
    return RecentOut(
        browser_enabled=preference.browser_enabled and preference.pk is not None,
        notifications=selectors.recent_notifications(request.auth, after_id=query.after),
    )
