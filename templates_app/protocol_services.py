"""Protocols as saved: their stages checked whole against their templates, and each stage pinned to a version.

Owns the rules a protocol keeps beyond the pure step plan's (`templates_app.protocols`): every stage's
template has a version; stage and shared values name its variables and pass its checks, and so do the
values each planned step sets (its output name, what it continues from); a stage's resources are
batch-script fields. `save_protocol` refuses a protocol that breaks one (`PROTOCOL_INVALID`, every problem
in `details`). Knows nothing of pipeline runs: they read `pinned_stages` / `stage_rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from portal.errors import InvalidInput
from templates_app import batch_script
from templates_app.models import Protocol, ProtocolStage, Template, TemplateVersion
from templates_app.protocols import StageRule, plan_steps, protocol_problems, stage_values
from templates_app.rendering import TemplateProblems, VariableSpec, coerce_value
from templates_app.specs import specs_from_json

STAGE_FIELDS = (
    "position",
    "name",
    "template",
    "repeat",
    "values",
    "resources",
    "recipe_name",
    "continuation",
    "input_variable",
)
# A stage's resources override the run's, field by field (batch_script.Resources); None: the cluster's default.
NAME_RESOURCES = frozenset({"partition", "account", "qos"})
LEAST_COUNTS = {
    "nodes": 1,
    "ntasks": 1,
    "cpus_per_task": 1,
    "memory_mb": 1,
    "walltime_s": batch_script.MIN_WALLTIME_S,
    "gpus": 0,
}
NULLABLE_RESOURCES = frozenset({"account", "qos", "memory_mb"})


@dataclass(frozen=True)
class PinnedStage:
    """A stage with the template version a run of it uses now (its template's latest) and its step-plan rule."""

    stage: ProtocolStage
    version: TemplateVersion
    rule: StageRule


def latest_version(template: Template) -> TemplateVersion | None:
    """The template's newest version (from prefetched versions when there are), None before its first."""
    return max(template.versions.all(), key=lambda version: version.number, default=None)


def stage_rule(stage: ProtocolStage, specs: list[VariableSpec], shared_values: dict[str, Any]) -> StageRule:
    """What the step plan needs of a stage whose template has these variables."""
    return StageRule(
        position=stage.position,
        name=stage.name,
        repeat=stage.repeat,
        continuation=stage.continuation,
        input_variable=stage.input_variable,
        specs=specs,
        values=stage_values(specs, shared_values, stage.values),
    )


def pinned_stages(protocol: Protocol) -> list[PinnedStage]:
    """Its stages in order, each with its template's latest version. Raises InvalidInput (PROTOCOL_INVALID)."""
    pinned = []
    for stage in sorted(protocol.stages.all(), key=lambda stage: stage.position):
        version = latest_version(stage.template)
        if version is None:
            raise _invalid([_unversioned(stage)])
        rule = stage_rule(stage, specs_from_json(version.variables), protocol.shared_values)
        pinned.append(PinnedStage(stage, version, rule))
    return pinned


def stage_rules(protocol: Protocol) -> list[StageRule]:
    """Each stage's rule: its latest version's variables; the shared values it has, its own over them.

    Raises InvalidInput (PROTOCOL_INVALID) when a stage's template has no version.
    """
    return [pinned.rule for pinned in pinned_stages(protocol)]


def stages_text(protocol: Protocol) -> str:
    """Its stages on one line, e.g. 'step4 equilibration → step5 production x 10'."""
    return " → ".join(
        f"{stage.name} x {stage.repeat}" if stage.repeat > 1 else stage.name for stage in protocol.stages.all()
    )


# ------------------------------------------------------------------ checking and saving a protocol whole


def protocol_draft_problems(*, shared_values: Any, stages: Sequence[ProtocolStage]) -> list[dict[str, str]]:
    """Every reason these stages (saved or not) and shared values make no usable protocol; empty when they do.

    Each problem is `{"field": "shared_values" | "stages" | "stages.<position>", "problem": text}`.
    """
    if not isinstance(shared_values, dict):
        return [_problem("shared_values", "Shared values are an object of variable names and values.")]
    positions = [stage.position for stage in stages]
    problems = [
        _problem("stages", f"Two stages have position {position}: give each stage its own.")
        for position in sorted({position for position in positions if positions.count(position) > 1})
    ]
    rules = []
    declared: set[str] = set()
    for stage in sorted(stages, key=lambda stage: stage.position):
        version = latest_version(stage.template)
        if version is None:
            problems.append(_unversioned(stage))
            continue
        specs = specs_from_json(version.variables)
        declared |= {spec.name for spec in specs}
        found = _value_problems(stage, specs, shared_values) + _resource_problems(stage)
        problems += found
        if not found:
            rules.append(stage_rule(stage, specs, shared_values))
    problems += [
        _problem("shared_values", f"Shared value {name!r}: no stage's template has this variable.")
        for name in sorted(set(shared_values) - declared)
    ]
    if problems:
        return problems
    problems = [_problem("stages", problem) for problem in protocol_problems(rules)]
    return problems or _step_problems(rules)


@transaction.atomic
def save_protocol(*, protocol: Protocol, stages: Sequence[ProtocolStage]) -> Protocol:
    """Save `protocol` (new or changed) with exactly `stages`, which replace the ones it had.

    Raises InvalidInput (PROTOCOL_INVALID, every problem in `details["problems"]`); nothing is saved then.
    """
    problems = protocol_draft_problems(shared_values=protocol.shared_values, stages=stages)
    if problems:
        raise _invalid(problems)
    if protocol.pk is not None:
        # one save of a protocol at a time: two would both replace its stages and collide on their positions
        Protocol.objects.select_for_update().filter(pk=protocol.pk).first()
    protocol.save()
    # Stages are updated in place by position, so the runs made before keep their link to each stage (a resume
    # pins its versions by it); positions no longer used go, new ones are added.
    kept = {stage.position: stage for stage in protocol.stages.all()}
    wanted = {stage.position for stage in stages}
    protocol.stages.exclude(position__in=wanted).delete()
    for stage in stages:
        fields = {name: getattr(stage, name) for name in STAGE_FIELDS}
        existing = kept.get(stage.position)
        if existing is None:
            ProtocolStage.objects.create(protocol=protocol, **fields)
        else:
            ProtocolStage.objects.filter(pk=existing.pk).update(**fields)
    return protocol


def _problem(field: str, problem: str) -> dict[str, str]:
    return {"field": field, "problem": problem}


def _where(stage: ProtocolStage) -> str:
    return f"Stage {stage.position} ({stage.name})"


def _unversioned(stage: ProtocolStage) -> dict[str, str]:
    return _problem(
        f"stages.{stage.position}",
        f"{_where(stage)}: its template '{stage.template.name}' has no version yet; save the template first.",
    )


def _invalid(problems: list[dict[str, str]]) -> InvalidInput:
    more = f" ({len(problems) - 1} more problems in details)" if len(problems) > 1 else ""
    return InvalidInput(
        f"The protocol cannot be used as it stands: {problems[0]['problem']}{more}",
        code="PROTOCOL_INVALID",
        details={"problems": problems},
    )


def _value_problems(stage: ProtocolStage, specs: list[VariableSpec], shared_values: dict[str, Any]) -> list[dict]:
    """The stage's own values name its template's variables; those and the shared ones it gets pass their checks."""
    field = f"stages.{stage.position}"
    if not isinstance(stage.values, dict):
        return [_problem(field, f"{_where(stage)}: its values are an object of variable names and values.")]
    by_name = {spec.name: spec for spec in specs}
    problems = [
        _problem(field, f"{_where(stage)}: its template has no variable {name!r}.")
        for name in sorted(set(stage.values) - set(by_name))
    ]
    for name, value in stage_values(specs, shared_values, stage.values).items():
        if name in by_name:
            problems += _coercion_problems(by_name[name], value, field=field, where=_where(stage))
    return problems


def _resource_problems(stage: ProtocolStage) -> list[dict[str, str]]:
    field = f"stages.{stage.position}"
    if not isinstance(stage.resources, dict):
        return [_problem(field, f"{_where(stage)}: its resources are an object of resource names and values.")]
    found = [(name, _resource_problem(name, value)) for name, value in sorted(stage.resources.items())]
    return [_problem(field, f"{_where(stage)}: resource {name!r} {wrong}.") for name, wrong in found if wrong]


def _resource_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the resource `name`; None when nothing is."""
    if value is None and name in NULLABLE_RESOURCES:
        return None
    if name in NAME_RESOURCES:
        is_good = isinstance(value, str) and batch_script.SLURM_NAME_RE.fullmatch(value) is not None
        return None if is_good else "is a SLURM name (letters, digits, _.-)"
    if name in LEAST_COUNTS:
        is_good = isinstance(value, int) and not isinstance(value, bool) and value >= LEAST_COUNTS[name]
        return None if is_good else f"is a whole number of at least {LEAST_COUNTS[name]}"
    return "is none the portal knows (" + ", ".join(sorted(NAME_RESOURCES | set(LEAST_COUNTS))) + ")"


def _step_problems(rules: list[StageRule]) -> list[dict[str, str]]:
    """The values each planned step sets (output name, restart files, first step, input name) pass their checks."""
    specs = {rule.position: {spec.name: spec for spec in rule.specs} for rule in rules}
    return [
        problem
        for step in plan_steps(rules)
        for name, value in step.values.items()
        for problem in _coercion_problems(
            specs[step.stage_position][name],
            value,
            field=f"stages.{step.stage_position}",
            where=f"Step {step.position} ({step.label})",
        )
    ]


def _coercion_problems(spec: VariableSpec, value: Any, *, field: str, where: str) -> list[dict[str, str]]:
    try:
        coerce_value(spec, value)
    except TemplateProblems as exc:
        return [_problem(field, f"{where}: {problem.message}") for problem in exc.problems]
    return []
