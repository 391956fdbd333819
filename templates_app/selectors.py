"""User-scoped reads on templates."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from templates_app.access import visible_templates
from templates_app.models import Template, TemplateVersion


def templates_with_versions(user: User) -> QuerySet[Template]:
    return visible_templates(user).filter(versions__isnull=False).distinct().prefetch_related("versions")


def latest_version(template: Template) -> TemplateVersion:
    return max(template.versions.all(), key=lambda version: version.number)
