"""How a protocol's stages become a pipeline's steps: their names, output names and continuation values.

A stage run N times gives N steps; every step gets its own output name (the stage's, `_<k>` added for
repeats, and made unique across the pipeline), written into the template's output variable. A step
continues from the step before it in one of two ways: the portal's restart mapping (the variables
read by `bincoordinates`/`binvelocities`/`extendedSystem` name the previous outputs, `first_step`
the step it ended at) or CHARMM-GUI's convention (the previous output name in the stage's input
variable, `inputname`). Pure: plain values in, plain values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from templates_app.rendering import VariableSpec

OUTPUT_VARIABLES = ("outputname", "output_name")
RESTART_SUFFIXES = {"bincoordinates": "coor", "binvelocities": "vel", "extendedsystem": "xsc"}
FIRST_STEP_VARIABLE = "first_step"
STEP_COUNT_VARIABLES = ("minimize_steps", "run_steps")
CONTINUATIONS = ("first", "restart", "charmm_gui")
OUTPUT_NAME_RE = re.compile(r"[A-Za-z0-9_.+-]{1,100}")
MAX_STEPS = 200


@dataclass(frozen=True)
class StageRule:
    """What the step plan needs of one protocol stage."""

    position: int
    name: str
    repeat: int
    continuation: str
    input_variable: str
    specs: list[VariableSpec]
    values: dict[str, Any]  # the stage's values: shared ones, then the stage's overrides, defaults not filled in


@dataclass(frozen=True)
class StepPlan:
    position: int  # from 1, over the whole pipeline
    stage_position: int
    repeat_index: int  # from 1
    label: str  # "production 2/3"
    output_name: str
    values: dict[str, Any]  # what the step sets over the stage's values: its output name, what it continues from


def output_variable(specs: list[VariableSpec]) -> str | None:
    """The variable naming the stage's outputs (`outputname` or `output_name`), if the template has one."""
    return next((spec.name for spec in specs if spec.name.lower() in OUTPUT_VARIABLES), None)


def restart_variables(specs: list[VariableSpec]) -> dict[str, str]:
    """The variables the restart mapping sets, by the suffix of the file each gets (coor, vel, xsc)."""
    return {
        RESTART_SUFFIXES[spec.namd_keyword.lower()]: spec.name
        for spec in specs
        if spec.namd_keyword and spec.namd_keyword.lower() in RESTART_SUFFIXES
    }


def stage_values(
    specs: list[VariableSpec], shared_values: dict[str, Any], own_values: dict[str, Any]
) -> dict[str, Any]:
    """A stage's values: the shared ones its template has a variable for, then its own over them."""
    names = {spec.name for spec in specs}
    return {name: value for name, value in shared_values.items() if name in names} | own_values


def stage_problems(stage: StageRule, *, is_first: bool) -> list[str]:
    """Why a stage cannot be part of a protocol as it stands (empty when it can)."""
    problems = []
    names = {spec.name for spec in stage.specs}
    if not 1 <= stage.repeat <= MAX_STEPS:
        problems.append(f"Stage {stage.position} ({stage.name}): repeat it 1 to {MAX_STEPS} times.")
    if output_variable(stage.specs) is None and (stage.repeat > 1 or not is_first):
        problems.append(
            f"Stage {stage.position} ({stage.name}): its template has no outputname or output_name variable, "
            "so the steps after it cannot find its outputs."
        )
    if stage.continuation not in CONTINUATIONS:
        problems.append(f"Stage {stage.position} ({stage.name}): unknown continuation {stage.continuation[:20]!r}.")
    elif is_first and stage.continuation != "first":
        problems.append(f"Stage {stage.position} ({stage.name}): the first stage starts from the member's inputs.")
    elif stage.continuation == "restart" and not restart_variables(stage.specs):
        problems.append(
            f"Stage {stage.position} ({stage.name}): its template reads no restart file (no variable for "
            "bincoordinates, binvelocities or extendedSystem); continue it CHARMM-GUI's way or change the template."
        )
    elif stage.continuation == "charmm_gui" and stage.input_variable not in names:
        problems.append(
            f"Stage {stage.position} ({stage.name}): its template has no variable {stage.input_variable[:60]!r} "
            "for the previous stage's output name."
        )
    if stage.continuation == "first" and not is_first and stage.repeat > 1:
        problems.append(f"Stage {stage.position} ({stage.name}): repeats must continue from each other.")
    return problems


def protocol_problems(stages: list[StageRule]) -> list[str]:
    """Every reason the stages do not make a protocol (empty when they do)."""
    if not stages:
        return ["A protocol has at least one stage."]
    problems = [problem for index, stage in enumerate(stages) for problem in stage_problems(stage, is_first=index == 0)]
    if sum(stage.repeat for stage in stages) > MAX_STEPS:
        problems.append(f"A protocol runs at most {MAX_STEPS} steps in all.")
    return problems


def _default(specs: list[VariableSpec], name: str) -> Any:
    return next((spec.default for spec in specs if spec.name == name), None)


def _end_step(stage: StageRule, values: dict[str, Any]) -> int | None:
    """The step a step of this stage ends at, if its values say (first_step + minimize_steps + run_steps)."""
    names = {spec.name for spec in stage.specs}
    if not names & set(STEP_COUNT_VARIABLES):
        return None
    total = 0
    for name in (FIRST_STEP_VARIABLE, *STEP_COUNT_VARIABLES):
        if name in names:
            value = values.get(name, _default(stage.specs, name))
            if not isinstance(value, int):
                return None
            total += value
    return total


def plan_steps(stages: list[StageRule]) -> list[StepPlan]:
    """The steps of a pipeline, in order, with the values each sets to continue from the one before."""
    steps: list[StepPlan] = []
    taken: set[str] = set()
    previous_output: str | None = None
    previous_end: int | None = None
    for stage in stages:
        variable = output_variable(stage.specs)
        base = str(stage.values.get(variable, _default(stage.specs, variable)) if variable else "") or "out"
        for k in range(1, stage.repeat + 1):
            position = len(steps) + 1
            output = f"{base}_{k}" if stage.repeat > 1 else base
            if output in taken or not OUTPUT_NAME_RE.fullmatch(output):
                output = f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', base)[:80]}_step{position}"
            taken.add(output)
            values: dict[str, Any] = {variable: output} if variable else {}
            continuation = "first" if k == 1 and stage.continuation == "first" else stage.continuation
            if continuation == "first" and k > 1:  # a first stage's repeats continue from each other
                continuation = "restart" if restart_variables(stage.specs) else "charmm_gui"
            if previous_output is not None and continuation == "restart":
                mapping = restart_variables(stage.specs)
                values.update({name: f"{previous_output}.{suffix}" for suffix, name in mapping.items()})
                if previous_end is not None and any(spec.name == FIRST_STEP_VARIABLE for spec in stage.specs):
                    values[FIRST_STEP_VARIABLE] = previous_end
            elif previous_output is not None and continuation == "charmm_gui":
                values[stage.input_variable] = previous_output
            label = f"{stage.name} {k}/{stage.repeat}" if stage.repeat > 1 else stage.name
            steps.append(StepPlan(position, stage.position, k, label, output, values))
            previous_output = output
            previous_end = _end_step(stage, {**stage.values, **values})
    return steps
