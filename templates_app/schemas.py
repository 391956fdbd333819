"""API shapes for templates."""

from __future__ import annotations

from typing import Any

from ninja import Schema


class TemplateOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    category: str
    is_retired: bool
    version: int
    variables_schema: dict[str, Any]


class PreviewIn(Schema):
    values: dict[str, Any] = {}


class PreviewOut(Schema):
    template_id: int
    version: int
    config: str | None
    problems: list[dict[str, Any]]
