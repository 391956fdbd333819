"""User-scoped reads on templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import User
from portal.errors import NotFound, TemplateError
from templates_app.access import visible_protocols, visible_templates
from templates_app.models import Protocol, ProtocolStage, Template, TemplateVersion
from templates_app.protocol_services import stages_text
from templates_app.rendering import VariableSpec
from templates_app.services import render_version
from templates_app.specs import specs_from_json


def templates_with_versions(user: User) -> QuerySet[Template]:
    return visible_templates(user).filter(versions__isnull=False).distinct().prefetch_related("versions__assets")


def latest_version(template: Template) -> TemplateVersion:
    return max(template.versions.all(), key=lambda version: version.number)


# ------------------------------------------------------------------ the catalogue: what a member can start a job from


@dataclass(frozen=True)
class CatalogueEntry:
    template: Template
    version: TemplateVersion  # the latest

    @property
    def variable_count(self) -> int:
        return len(self.version.variables)


@dataclass(frozen=True)
class CatalogueGroup:
    category: str  # the category's label, e.g. "Equilibration"
    entries: list[CatalogueEntry]


@dataclass(frozen=True)
class CatalogueDetail:
    template: Template
    version: TemplateVersion
    variables: list[VariableSpec]
    example_config: str | None  # the config rendered with every default; None when that fails
    problems: list[dict[str, Any]]  # why it failed, each with its code


def offered_templates(user: User) -> QuerySet[Template]:
    """The templates `user` may start a job from: visible, with a version, not retired (for admins too)."""
    return templates_with_versions(user).filter(is_retired=False)


def catalogue_groups(user: User) -> list[CatalogueGroup]:
    """The offered templates with their latest versions, by category in workflow order, empty ones left out."""
    entries = [CatalogueEntry(template, latest_version(template)) for template in offered_templates(user)]
    groups = [
        CatalogueGroup(label, [entry for entry in entries if entry.template.category == value])
        for value, label in Template.Category.choices
    ]
    return [group for group in groups if group.entries]


def catalogue_detail(*, user: User, slug: str) -> CatalogueDetail:
    """One offered template, its variables and its config rendered with the defaults.

    Raises NotFound (TEMPLATE_NOT_FOUND) for a missing, invisible or retired template.
    """
    template = offered_templates(user).filter(slug=slug).first()
    if template is None:
        raise NotFound("No such template.", code="TEMPLATE_NOT_FOUND")
    version = latest_version(template)
    try:
        config, problems = render_version(version=version, values={}).config, []
    except TemplateError as exc:
        config, problems = None, exc.details["problems"]
    return CatalogueDetail(template, version, specs_from_json(version.variables), config, problems)


# ------------------------------------------------------------------ protocols a member can run


def offered_protocols(user: User) -> QuerySet[Protocol]:
    """The protocols `user` may start a run of: visible, not retired, no retired template (for admins too)."""
    retired_stages = ProtocolStage.objects.filter(protocol=OuterRef("pk"), template__is_retired=True)
    return (
        visible_protocols(user)
        .filter(is_retired=False)
        .exclude(Exists(retired_stages))
        .prefetch_related("stages__template__versions")
    )


@dataclass(frozen=True)
class ProtocolEntry:
    protocol: Protocol
    stages: str  # its stages on one line: 'minimization → equilibration → production x 3'
    step_count: int


def protocol_entries(user: User) -> list[ProtocolEntry]:
    """The offered protocols, each with its stages on one line and its number of steps (a constant number of
    queries: the stages come prefetched)."""
    return [
        ProtocolEntry(protocol, stages_text(protocol), sum(stage.repeat for stage in protocol.stages.all()))
        for protocol in offered_protocols(user)
    ]
