"""The one permission rule for templates: members see the offered ones, lab admins every one."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from portal.errors import NotFound
from templates_app.models import Template


def visible_templates(user: User) -> QuerySet[Template]:
    if not user.is_active:
        return Template.objects.none()
    if user.is_lab_admin:
        return Template.objects.all()
    return Template.objects.filter(is_retired=False)


def access_template(*, user: User, template_id: int) -> Template:
    """Raises NotFound (TEMPLATE_NOT_FOUND) for a missing template and one the user may not see."""
    template = visible_templates(user).filter(pk=template_id).first()
    if template is None:
        raise NotFound("No such template.", code="TEMPLATE_NOT_FOUND")
    return template
