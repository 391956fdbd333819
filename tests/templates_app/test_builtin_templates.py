"""The built-in templates and their protocol: loaded once, versioned on change, and each runs under NAMD's stand-in."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import call_command

from templates_app.builtin import BUILTIN_PROTOCOL_SLUG, BUILTIN_TEMPLATES, load_builtin_templates
from templates_app.models import Protocol, ProtocolStage, Template, TemplateVersion
from templates_app.protocol_services import pinned_stages, stage_rules
from templates_app.protocols import plan_steps, protocol_problems, stage_values
from templates_app.services import render_version, save_template_version

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "localcluster" / "namd_standin.py"
WATER = {"structure": "water.psf", "coordinates": "water.pdb", "parameters": "par_water.prm"}
QUICK = {"output_energies": 10, "run_steps": 100, "restart_every": 50, "dcd_every": 50, "minimize_steps": 50}
CELL = {"cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0}


def values_for(slug: str) -> dict:
    """Small, fast values on the water test system; production continues from the NPT run's outputs."""
    by_slug = {
        "vacuum-minimization": {**WATER, "output_energies": 10, "minimize_steps": 50, "output_name": "min"},
        "npt-equilibration": {**WATER, **QUICK, **CELL, "output_name": "npt"},
        "production-restart": {
            **WATER,
            **{k: v for k, v in QUICK.items() if k != "minimize_steps"},
            "restart_coordinates": "npt.coor",
            "restart_velocities": "npt.vel",
            "restart_cell": "npt.xsc",
            "first_step": 150,
            "output_name": "prod",
        },
    }
    return by_slug[slug]


def latest(slug: str) -> TemplateVersion:
    return TemplateVersion.objects.filter(template__slug=slug).order_by("-number").first()


@pytest.mark.django_db
def test_loading_is_idempotent_and_an_edit_makes_a_new_version() -> None:
    load_builtin_templates()
    load_builtin_templates()
    assert sorted(Template.objects.values_list("slug", flat=True)) == sorted(b.slug for b in BUILTIN_TEMPLATES)
    assert set(TemplateVersion.objects.values_list("number", flat=True)) == {1}
    first = latest("vacuum-minimization")
    template = first.template
    second = save_template_version(
        template=template, body=first.body + "# edited\n", variables=first.variables, user=None
    )
    assert (second.number, first.number) == (2, 1)
    first.refresh_from_db()
    assert "# edited" not in first.body  # the old version, which past jobs point at, is unchanged


def run_engine(folder: Path, name: str, config: str) -> str:
    """NAMD's stand-in on `config` in `folder`, unpaced; its log. Fails the test when it fails."""
    (folder / f"{name}.namd").write_text(config)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "0"}
    run = subprocess.run(
        [sys.executable, str(ENGINE), f"{name}.namd"], cwd=folder, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, f"{name}:\n{run.stdout[-2000:]}"
    assert "WallClock:" in run.stdout
    return run.stdout


def water_in(folder: Path) -> None:
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        shutil.copy(FIXTURES / name, folder / name)


@pytest.mark.django_db
def test_every_builtin_template_runs_to_completion_under_the_stand_in_engine(tmp_path: Path) -> None:
    load_builtin_templates()
    water_in(tmp_path)
    for slug in ("vacuum-minimization", "npt-equilibration", "production-restart"):
        run_engine(tmp_path, slug, render_version(version=latest(slug), values=values_for(slug)).config)
    assert (tmp_path / "prod.coor").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("slug", [builtin.slug for builtin in BUILTIN_TEMPLATES])
def test_an_optional_seed_adds_its_line_only_when_given(slug: str) -> None:
    load_builtin_templates()
    version = latest(slug)
    unseeded = render_version(version=version, values={}).config
    assert "seed" not in unseeded
    seeded = render_version(version=version, values={"seed": 2024}).config
    assert [line for line in seeded.splitlines() if line not in unseeded.splitlines()] == ["seed               2024"]
    assert render_version(version=version, values={"seed": ""}).config == unseeded


@pytest.mark.django_db
def test_the_equilibration_may_start_from_binary_coordinates_with_its_temperature() -> None:
    load_builtin_templates()
    version = latest("npt-equilibration")
    assert "bincoordinates" not in render_version(version=version, values={}).config
    config = render_version(version=version, values={"start_coordinates": "min.coor"}).config
    assert "bincoordinates     min.coor\ntemperature        300.0\n" in config


@pytest.mark.django_db
def test_the_builtin_protocol_plans_minimization_equilibration_and_three_productions() -> None:
    load_builtin_templates()
    load_builtin_templates()
    protocol = Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)
    assert protocol.name == "Minimize, equilibrate, produce"
    assert list(protocol.stages.values_list("template__slug", "continuation", "repeat")) == [
        ("vacuum-minimization", "first", 1),
        ("npt-equilibration", "restart", 1),
        ("production-restart", "restart", 3),
    ]
    rules = stage_rules(protocol)
    assert protocol_problems(rules) == []
    steps = plan_steps(rules)
    assert [(step.label, step.output_name) for step in steps] == [
        ("minimization", "minimization"),
        ("equilibration", "equilibration"),
        ("production 1/3", "production_1"),
        ("production 2/3", "production_2"),
        ("production 3/3", "production_3"),
    ]
    assert steps[1].values == {"output_name": "equilibration", "start_coordinates": "minimization.coor"}
    defaults = {v["name"]: v.get("default") for v in latest("npt-equilibration").variables}
    equilibration_end = defaults["minimize_steps"] + defaults["run_steps"]
    run_steps = {v["name"]: v.get("default") for v in latest("production-restart").variables}["run_steps"]
    assert steps[2].values == {
        "output_name": "production_1",
        "restart_coordinates": "equilibration.coor",
        "restart_velocities": "equilibration.vel",
        "restart_cell": "equilibration.xsc",
        "first_step": equilibration_end,
    }
    assert steps[3].values["first_step"] == equilibration_end + run_steps
    assert steps[3].values["restart_coordinates"] == "production_1.coor"


@pytest.mark.django_db
def test_loading_again_brings_the_builtin_protocol_back_and_keeps_it_retired() -> None:
    load_builtin_templates()
    protocol = Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)
    Protocol.objects.filter(pk=protocol.pk).update(is_retired=True)
    ProtocolStage.objects.filter(protocol=protocol, position=3).update(repeat=7)
    load_builtin_templates()
    protocol.refresh_from_db()
    assert protocol.is_retired is True
    assert list(protocol.stages.values_list("repeat", flat=True)) == [1, 1, 3]
    assert Protocol.objects.count() == 1


@pytest.mark.django_db
def test_the_builtin_protocol_runs_step_after_step_under_the_stand_in_engine(tmp_path: Path) -> None:
    """Each step reads what the one before wrote, and starts at the step it ended at."""
    load_builtin_templates()
    water_in(tmp_path)
    protocol = Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)
    quick = {**WATER, **QUICK, **CELL}  # a run's values over the protocol's, where a stage's template has them
    pinned = pinned_stages(protocol)
    rules = [replace(item.rule, values=stage_values(item.rule.specs, quick, item.rule.values)) for item in pinned]
    for step in plan_steps(rules):
        stage = step.stage_position - 1
        config = render_version(version=pinned[stage].version, values={**rules[stage].values, **step.values}).config
        run_engine(tmp_path, step.output_name, config)
    ends = {name: last_step(tmp_path / f"{name}.xsc") for name in ("equilibration", *PRODUCTIONS)}
    assert ends == {"equilibration": 150, "production_1": 250, "production_2": 350, "production_3": 450}


PRODUCTIONS = ("production_1", "production_2", "production_3")


def last_step(xsc: Path) -> int:
    """The step an .xsc was written at (its last line's first field)."""
    return int(xsc.read_text().splitlines()[-1].split()[0])


@pytest.mark.django_db
def test_the_command_loads_the_templates_and_says_what_the_protocol_runs() -> None:
    out = io.StringIO()
    call_command("load_builtin_templates", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "protocol 'Minimize, equilibrate, produce': minimization → equilibration → production x 3"
    )
