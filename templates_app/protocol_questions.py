"""What a run of a protocol asks its member: the values asked once (the union of its stages' template variables)
and each stage's own overrides, with the value each stage gets when the member leaves one empty.

Left out: files (the member uploads them on the inputs step, under the template's names) and what the step plan
sets on every step of a stage (its output name, the restart files and first step it continues from, CHARMM-GUI's
input name), since a member's value there would never reach a config. Reads only; knows nothing of runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from templates_app.models import Protocol, ProtocolStage, TemplateVersion
from templates_app.protocol_services import pinned_stages, stage_rule
from templates_app.protocols import plan_steps, stage_values
from templates_app.rendering import VariableSpec, VariableType
from templates_app.specs import specs_from_json


@dataclass(frozen=True)
class StageValue:
    """What one stage gets for a variable when the member gives nothing: its own, the shared one or the default."""

    stage_name: str
    value: Any


@dataclass(frozen=True)
class AskedVariable:
    """One variable a run asks for, with its definition in each stage's template that has it."""

    name: str
    specs: list[VariableSpec]  # one per stage having it, in stage order (the first gives the field its shape)
    planned: list[StageValue]  # what each of those stages gets when the member leaves it empty

    @property
    def spec(self) -> VariableSpec:
        return self.specs[0]

    @property
    def is_required(self) -> bool:
        """A value must be given: some stage would get none, and its template requires one."""
        return any(
            planned.value is None and spec.required for spec, planned in zip(self.specs, self.planned, strict=True)
        )

    @property
    def planned_text(self) -> str:
        """'300.0', or per stage when they differ: 'minimization 1000; equilibration 500'; 'none' for no value."""
        shown = [("none" if planned.value is None else str(planned.value)) for planned in self.planned]
        if len(set(shown)) == 1:
            return shown[0]
        return "; ".join(f"{planned.stage_name} {text}" for planned, text in zip(self.planned, shown, strict=True))


@dataclass(frozen=True)
class StageQuestions:
    stage: ProtocolStage
    version: TemplateVersion
    variables: list[AskedVariable]  # the stage's own overrides (each of one spec)
    step_count: int


@dataclass(frozen=True)
class ProtocolQuestions:
    shared: list[AskedVariable]
    stages: list[StageQuestions]


def protocol_questions(
    protocol: Protocol,
    *,
    versions: dict[int, TemplateVersion] | None = None,
    values: dict[str, Any] | None = None,
    stage_overrides: dict[int, dict[str, Any]] | None = None,
    from_step: int = 1,
) -> ProtocolQuestions:
    """The questions of a run of `protocol`: with its stages' latest versions, or `versions` (by stage id) where
    given; what each stage gets counts the member's `values` and `stage_overrides` (by stage position) so far.
    Only stages with a step from `from_step` on are asked about. Raises InvalidInput (PROTOCOL_INVALID)."""
    values, stage_overrides = values or {}, stage_overrides or {}
    stages = []
    for pinned in pinned_stages(protocol):
        version = (versions or {}).get(pinned.stage.pk, pinned.version)
        specs = specs_from_json(version.variables)
        stages.append((pinned.stage, version, stage_rule(pinned.stage, specs, protocol.shared_values)))
    steps = plan_steps([rule for _, _, rule in stages])
    asked_stages = []
    shared: dict[str, AskedVariable] = {}
    for stage, version, rule in stages:
        own_steps = [step for step in steps if step.stage_position == stage.position]
        if not any(step.position >= from_step for step in own_steps):
            continue
        always_set = set.intersection(*(set(step.values) for step in own_steps)) if own_steps else set()
        gets = stage_values(
            rule.specs,
            {**protocol.shared_values, **values},
            {**stage.values, **stage_overrides.get(stage.position, {})},
        )
        asked = [
            AskedVariable(spec.name, [spec], [StageValue(stage.name, gets.get(spec.name, spec.default))])
            for spec in rule.specs
            if spec.type is not VariableType.FILE and spec.name not in always_set
        ]
        for variable in asked:
            known = shared.get(variable.name)
            shared[variable.name] = (
                variable
                if known is None
                else AskedVariable(variable.name, known.specs + variable.specs, known.planned + variable.planned)
            )
        asked_stages.append(StageQuestions(stage, version, asked, len(own_steps)))
    return ProtocolQuestions(list(shared.values()), asked_stages)
