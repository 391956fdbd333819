"""Variable definitions as stored (JSON) and as used (VariableSpec): the one conversion, with checks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from templates_app.rendering import Problem, TemplateProblems, VariableSpec, VariableType

ALLOWED_KEYS = frozenset(VariableSpec.__dataclass_fields__)


def spec_from_dict(data: object) -> VariableSpec:
    """Raises TemplateProblems (VARIABLE_DEFINITION_INVALID) naming what is wrong."""

    def invalid(message: str) -> TemplateProblems:
        name = data.get("name", "?") if isinstance(data, dict) else "?"
        return TemplateProblems([Problem("VARIABLE_DEFINITION_INVALID", f"{name}: {message}", str(name))])

    if not isinstance(data, dict):
        raise invalid("each variable is an object with at least 'name' and 'type'")
    unknown = set(data) - ALLOWED_KEYS
    if unknown:
        raise invalid("unknown fields " + ", ".join(sorted(unknown)))
    try:
        kind = VariableType(data.get("type"))
    except ValueError as exc:
        raise invalid("type must be one of " + ", ".join(t.value for t in VariableType)) from exc
    if kind is VariableType.CHOICE and not data.get("choices"):
        raise invalid("a choice variable lists its choices")
    fields: dict[str, Any] = {**data, "type": kind}
    for key in ("choices", "extensions"):
        fields[key] = tuple(str(item) for item in data.get(key, ()))
    return VariableSpec(**fields)


def specs_from_json(data: object) -> list[VariableSpec]:
    if not isinstance(data, list):
        raise TemplateProblems([Problem("VARIABLE_DEFINITION_INVALID", "variables must be a list")])
    return [spec_from_dict(item) for item in data]


def spec_to_dict(spec: VariableSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["type"] = spec.type.value
    data["choices"], data["extensions"] = list(spec.choices), list(spec.extensions)
    return {key: value for key, value in data.items() if value not in (None, "", [], ())} | {"name": spec.name}


def json_schema(specs: list[VariableSpec]) -> dict[str, Any]:
    """A JSON-Schema-like description of the variables, enough to build a form."""
    types = {VariableType.INTEGER: "integer", VariableType.FLOAT: "number", VariableType.BOOLEAN: "boolean"}
    properties: dict[str, Any] = {}
    for spec in specs:
        prop: dict[str, Any] = {"type": types.get(spec.type, "string"), "x-kind": spec.type.value}
        for key, value in (
            ("default", spec.default),
            ("description", spec.help),
            ("minimum", spec.minimum),
            ("maximum", spec.maximum),
            ("x-unit", spec.unit),
            ("pattern", spec.pattern),
            ("x-namd-keyword", spec.namd_keyword),
        ):
            if value not in (None, ""):
                prop[key] = value
        if spec.choices:
            prop["enum"] = list(spec.choices)
        if spec.extensions:
            prop["x-extensions"] = list(spec.extensions)
        properties[spec.name] = prop
    required = [spec.name for spec in specs if spec.required and spec.default is None]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
