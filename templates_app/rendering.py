"""Rendering NAMD templates safely: typed variable definitions, value checks, Jinja2's sandbox.

Values are validated and typed before rendering, so a member's text can never add a line, a
keyword or Tcl to a config: newlines and `; # $ [ ] { }` are refused. The body (an admin's, which may
be any NAMD config, Tcl included) renders in Jinja2's immutable sandbox with no loader (no
`include`/`import` of files) and undefined names as errors; the result is then read through Tcl as
NAMD reads it (`namd_config`). Plain dataclasses in and out, no Django; the only I/O is the reader's
Tcl process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from templates_app.namd_config import ConfigCheck, check_config

VARIABLE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
UNSAFE_TEXT_RE = re.compile(r"[\n\r;#$\[\]{}\\\"'`\x00-\x1f]")
MAX_TEXT_LENGTH = 200
MAX_BODY_LENGTH = 50_000


class VariableType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    TEXT = "text"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    FILE = "file"


@dataclass(frozen=True)
class VariableSpec:
    """One declared template variable, as an admin defined it."""

    name: str
    type: VariableType
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    pattern: str = ""
    choices: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # for files, e.g. (".psf",)
    required: bool = True  # False: it may be left empty, and renders as None (guard its line with `{% if %}`)
    namd_keyword: str = ""  # for files: the keyword the file feeds, e.g. "structure"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    field: str = ""  # the variable it concerns, if any
    line: int | None = None  # the template line, if any
    severity: str = "error"  # or "warning": shown, never blocking
    file: str = ""  # a file the config sources, when the problem is in it


class TemplateProblems(Exception):
    """A template or its values could not be used; `.problems` says every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems

    @property
    def code(self) -> str:
        return self.problems[0].code


@dataclass(frozen=True)
class Rendered:
    config: str
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    cluster_commands: list[dict[str, Any]] = field(default_factory=list)  # what it runs on the cluster: text, line
    files_read: list[dict[str, Any]] = field(default_factory=list)  # path, keyword, line, made_on_cluster


def config_problems(check: ConfigCheck) -> list[Problem]:
    """The checker's problems (errors and warnings) as template problems."""
    return [Problem(p.code, p.message, line=p.line, severity=p.severity, file=p.file) for p in check.problems]


def summary(check: ConfigCheck) -> dict[str, list[dict[str, Any]]]:
    """What a member is shown of a config: the commands it runs on the cluster and the files it reads."""
    return {
        "cluster_commands": [{"text": a.text, "line": a.line, "file": a.file} for a in check.cluster_actions],
        "files_read": [
            {"path": r.path, "keyword": r.keyword, "line": r.line, "made_on_cluster": r.made_on_cluster}
            for r in check.files_read
        ],
    }


def _environment() -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    environment.filters["onoff"] = lambda value: "on" if value else "off"
    return environment


ENVIRONMENT = _environment()


@lru_cache(maxsize=256)
def _compiled(body: str) -> Template:
    """A body compiled once (compiling costs ~100x a render); raises SecurityError for include/import."""
    if any(True for _ in meta.find_referenced_templates(ENVIRONMENT.parse(body))):
        raise SecurityError("templates may not include, import or extend other templates")
    return ENVIRONMENT.from_string(body)


def _number(spec: VariableSpec, raw: object, *, integer: bool) -> int | float:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, str):
        raw = raw.strip()
        value: int | float = int(raw) if integer else float(raw)
    elif (integer and isinstance(raw, int)) or (not integer and isinstance(raw, int | float)):
        value = raw
    elif integer and isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    else:
        raise ValueError
    if not math.isfinite(value):
        raise ValueError
    return value


def coerce_value(spec: VariableSpec, raw: object) -> Any:
    """The typed value for one variable. Raises TemplateProblems with one coded problem."""

    def refuse(code: str, message: str) -> TemplateProblems:
        return TemplateProblems([Problem(code, f"{spec.name}: {message}", field=spec.name)])

    if raw is None or raw == "":
        if not spec.required:
            return None  # an optional variable left empty: the body's `{% if name %}` leaves its line out
        raise refuse("VALUE_REQUIRED", "a value is required")
    if spec.type in (VariableType.INTEGER, VariableType.FLOAT):
        try:
            value = _number(spec, raw, integer=spec.type is VariableType.INTEGER)
        except (ValueError, TypeError, OverflowError):
            kind = "a whole number" if spec.type is VariableType.INTEGER else "a number"
            raise refuse("VALUE_WRONG_TYPE", f"must be {kind}") from None
        if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
            unit = f" {spec.unit}" if spec.unit else ""
            raise refuse("VALUE_OUT_OF_RANGE", f"must be between {spec.minimum} and {spec.maximum}{unit}")
        return value
    if spec.type is VariableType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"on", "yes", "true", "1", "off", "no", "false", "0"}:
            return raw.strip().lower() in {"on", "yes", "true", "1"}
        raise refuse("VALUE_WRONG_TYPE", "must be on or off")
    if not isinstance(raw, str):
        raise refuse("VALUE_WRONG_TYPE", "must be text")
    if len(raw) > MAX_TEXT_LENGTH:
        raise refuse("VALUE_TOO_LONG", f"must be at most {MAX_TEXT_LENGTH} characters")
    if spec.type is VariableType.CHOICE:
        if raw not in spec.choices:
            raise refuse("VALUE_NOT_A_CHOICE", "must be one of " + ", ".join(spec.choices))
        return raw
    if spec.type is VariableType.FILE:
        if not FILE_NAME_RE.fullmatch(raw) or raw in {".", ".."}:
            raise refuse("FILE_NAME_INVALID", "a file name of letters, digits and _.+- (no folders)")
        if spec.extensions and not raw.lower().endswith(tuple(ext.lower() for ext in spec.extensions)):
            raise refuse("FILE_EXTENSION_NOT_ALLOWED", "must end with " + " or ".join(spec.extensions))
        return raw
    if UNSAFE_TEXT_RE.search(raw) or not raw.strip() or raw.split()[0] == "=":
        raise refuse("VALUE_UNSAFE", "may not contain line breaks, quotes or ; # $ [ ] { } \\, nor start with '='")
    if spec.pattern and not re.fullmatch(spec.pattern, raw):
        raise refuse("VALUE_PATTERN_MISMATCH", f"must match {spec.pattern}")
    return raw


def coerce_values(specs: list[VariableSpec], raw_values: Mapping[str, object]) -> dict[str, Any]:
    """Typed values for all variables (defaults fill the gaps). Raises TemplateProblems with every problem."""
    unknown = sorted(set(raw_values) - {spec.name for spec in specs})
    problems = [
        Problem("VALUE_UNKNOWN_VARIABLE", f"{name}: this template has no such variable", name) for name in unknown
    ]
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            values[spec.name] = coerce_value(spec, raw_values.get(spec.name, spec.default))
        except TemplateProblems as exc:
            problems.extend(exc.problems)
    if problems:
        raise TemplateProblems(problems)
    return values


def render_config(
    body: str,
    specs: list[VariableSpec],
    raw_values: Mapping[str, object],
    *,
    config_path: str = "job.namd",
    files: Mapping[str, Path] | None = None,
) -> Rendered:
    """The NAMD config for these values, read as NAMD will read it at `config_path` in the job folder.

    Raises TemplateProblems (values, sandbox, or the config checker's errors); its warnings, the
    commands it runs on the cluster and the files it reads come with the result.
    """
    values = coerce_values(specs, raw_values)
    try:
        config = _compiled(body).render(values)
    except SecurityError as exc:
        raise TemplateProblems([Problem("TEMPLATE_UNSAFE", f"the template tried something unsafe: {exc}")]) from exc
    except UndefinedError as exc:
        raise TemplateProblems([Problem("TEMPLATE_UNDEFINED", f"the template uses an undefined name: {exc}")]) from exc
    except TemplateError as exc:
        raise TemplateProblems([Problem("TEMPLATE_ERROR", f"the template could not be rendered: {exc}")]) from exc
    check = check_config(config, config_path=config_path, files=files, config_only=True)
    problems = config_problems(check)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        raise TemplateProblems(errors)
    warnings = [problem for problem in problems if problem.severity != "error"]
    return Rendered(config=config, values=values, warnings=warnings, **summary(check))


def check_template(
    body: str, specs: list[VariableSpec], *, config_path: str = "job.namd", files: Mapping[str, Path] | None = None
) -> list[Problem]:
    """Everything wrong with a template as an admin wrote it: syntax, declarations, defaults, the config."""
    problems = [
        Problem("VARIABLE_NAME_INVALID", f"'{spec.name}' is not a valid variable name", spec.name)
        for spec in specs
        if not VARIABLE_NAME_RE.fullmatch(spec.name)
    ]
    if len(body) > MAX_BODY_LENGTH:
        return [*problems, Problem("TEMPLATE_TOO_LONG", f"a template body has at most {MAX_BODY_LENGTH} characters")]
    try:
        parsed = ENVIRONMENT.parse(body)
    except TemplateSyntaxError as exc:
        return [*problems, Problem("TEMPLATE_SYNTAX", exc.message or "syntax error", line=exc.lineno)]
    used = meta.find_undeclared_variables(parsed)
    declared = {spec.name for spec in specs}
    problems += [
        Problem("VARIABLE_UNDECLARED", f"'{name}' is used but not declared", name) for name in sorted(used - declared)
    ]
    problems += [
        Problem("VARIABLE_UNUSED", f"'{name}' is declared but not used", name) for name in sorted(declared - used)
    ]
    if any(True for _ in meta.find_referenced_templates(parsed)):
        problems.append(Problem("TEMPLATE_UNSAFE", "templates may not include, import or extend other templates"))
    if problems:
        return problems
    try:
        render_config(body, specs, {}, config_path=config_path, files=files)
    except TemplateProblems as exc:
        return exc.problems
    return []
