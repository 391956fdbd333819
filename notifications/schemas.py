"""API shapes for notifications: a member's preferences and their recent notifications."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema

from notifications.models import Event


class PreferencesIn(Schema):
    email_enabled: bool = Field(description="Mail to the member's email address.")
    webhook_url: str | None = Field(
        default=None,
        max_length=500,
        description='https URL of a public host (or one an admin allowed) replaces the current one; "" removes it; '
        "omitted or null keeps it. Never returned.",
    )
    browser_enabled: bool = Field(default=False, description="Show notifications on open portal pages.")
    events: list[Event] = Field(description="The events wanted.")


class PreferencesOut(Schema):
    email_enabled: bool
    email: str = Field(description="Where mails go (the account's address).")
    webhook_set: bool = Field(description="A webhook URL is stored (encrypted; the URL itself is never returned).")
    webhook_host: str = Field(description="The stored webhook URL's host; empty when none.")
    browser_enabled: bool
    events: list[str]


class NotificationOut(Schema):
    id: int
    event: str
    subject: str
    text: str
    link: str
    created_at: datetime


class RecentOut(Schema):
    browser_enabled: bool
    notifications: list[NotificationOut] = Field(description="Newest last, after the id asked for; at most 20.")
