"""The built-in templates: loaded once, versioned on change, and each runs under NAMD's stand-in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from templates_app.builtin import BUILTIN_TEMPLATES, load_builtin_templates
from templates_app.models import Template, TemplateVersion
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


@pytest.mark.django_db
def test_every_builtin_template_runs_to_completion_under_the_stand_in_engine(tmp_path: Path) -> None:
    load_builtin_templates()
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "0"}
    for slug in ("vacuum-minimization", "npt-equilibration", "production-restart"):
        config = render_version(version=latest(slug), values=values_for(slug)).config
        (tmp_path / f"{slug}.namd").write_text(config)
        run = subprocess.run(
            [sys.executable, str(ENGINE), f"{slug}.namd"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, f"{slug}:\n{run.stdout[-2000:]}"
        assert "WallClock:" in run.stdout
    assert (tmp_path / "prod.coor").exists()
