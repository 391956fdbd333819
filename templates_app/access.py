"""The one permission rule for templates: members see the offered ones, lab admins every one; and protocols:
members see the offered ones whose every stage's template they may use, lab admins every one they can use."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import User
from portal.errors import NotFound
from templates_app.models import Protocol, ProtocolStage, Template


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


def visible_protocols(user: User) -> QuerySet[Protocol]:
    """Protocols with stages whose templates `user` sees and that have a version: a run can be made of them."""
    if not user.is_active:
        return Protocol.objects.none()
    usable_templates = visible_templates(user).filter(versions__isnull=False)
    stages = ProtocolStage.objects.filter(protocol=OuterRef("pk"))
    usable = Protocol.objects.filter(Exists(stages)).exclude(Exists(stages.exclude(template__in=usable_templates)))
    if user.is_lab_admin:
        return usable
    return usable.filter(is_retired=False)


def access_protocol(*, user: User, protocol_id: int) -> Protocol:
    """Raises NotFound (PROTOCOL_NOT_FOUND) for a missing protocol and one the user may not see."""
    protocol = visible_protocols(user).filter(pk=protocol_id).first()
    if protocol is None:
        raise NotFound("No such protocol.", code="PROTOCOL_NOT_FOUND")
    return protocol
