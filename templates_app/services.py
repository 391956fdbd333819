"""Writes on templates: new immutable versions (validated whole), retiring, previews."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from portal.errors import TemplateError
from templates_app.models import Template, TemplateVersion
from templates_app.rendering import Problem, Rendered, TemplateProblems, check_template, render_config
from templates_app.specs import specs_from_json


def _error(problems: list[Problem]) -> TemplateError:
    first = problems[0]
    return TemplateError(
        str(first.message if first.line is None else f"line {first.line}: {first.message}"),
        code=first.code,
        details={
            "problems": [{"code": p.code, "message": p.message, "field": p.field, "line": p.line} for p in problems]
        },
    )


def template_problems(*, body: str, variables: Any) -> list[Problem]:
    """Everything wrong with a body and its variable definitions (empty when usable)."""
    try:
        specs = specs_from_json(variables)
    except TemplateProblems as exc:
        return exc.problems
    return check_template(body, specs)


@transaction.atomic
def save_template_version(*, template: Template, body: str, variables: Any, user: User | None) -> TemplateVersion:
    """A new version when body or variables changed (the latest otherwise). Raises TemplateError."""
    problems = template_problems(body=body, variables=variables)
    if problems:
        raise _error(problems)
    latest = Template.objects.select_for_update().get(pk=template.pk).versions.order_by("-number").first()
    if latest is not None and latest.body == body and latest.variables == variables:
        return latest
    return TemplateVersion.objects.create(
        template=template, number=(latest.number if latest else 0) + 1, body=body, variables=variables, created_by=user
    )


def render_version(*, version: TemplateVersion, values: dict[str, Any]) -> Rendered:
    """The NAMD config of a version for these values. Raises TemplateError with every problem."""
    try:
        return render_config(version.body, specs_from_json(version.variables), values)
    except TemplateProblems as exc:
        raise _error(exc.problems) from exc
