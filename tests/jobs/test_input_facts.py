"""What input files say: the cell of a CRYST1 record or an .xsc, a restart's step; values offered from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.input_facts import file_facts, pdb_cell, suggested_values
from templates_app.namd_config import extended_system_file_facts as xsc_facts

INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_inputs"
CHARMM_GUI_XSC = Path(__file__).resolve().parents[1] / "fixtures" / "namd_standin" / "charmm_gui_solution" / "namd"
WATER = Path(__file__).resolve().parents[1] / "fixtures" / "namd"


def test_the_cell_of_a_real_cryst1_record() -> None:
    assert pdb_cell(INPUTS / "1ubq_head.pdb") == [50.84, 42.77, 28.95]


def test_a_pdb_without_cryst1_or_with_the_unit_placeholder_says_nothing(tmp_path: Path) -> None:
    assert pdb_cell(WATER / "water.pdb") is None
    placeholder = tmp_path / "p.pdb"
    placeholder.write_text("CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1\n")
    assert pdb_cell(placeholder) is None
    broken = tmp_path / "b.pdb"
    broken.write_text("CRYST1   50.8x0   42.770   28.950\n")
    assert pdb_cell(broken) is None


def test_an_xsc_gives_its_step_and_the_lengths_of_its_cell_vectors(tmp_path: Path) -> None:
    facts = xsc_facts(CHARMM_GUI_XSC / "step3_input.xsc")  # a truncated octahedron
    assert facts["step"] == 0
    assert facts["cell"] == pytest.approx([141.0, 140.9999, 140.9999], abs=1e-3)
    restart = tmp_path / "out.xsc"
    restart.write_text(
        "# NAMD extended system\n#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z\n"
        "25000 30.5 0 0 0 31 0 0 0 29.5 0 0 0\n"
    )
    assert xsc_facts(restart) == {"step": 25000, "cell": [30.5, 31.0, 29.5]}
    restart.write_text("garbage\n")
    assert xsc_facts(restart) == {}


def test_values_offered_from_the_files_prefer_the_xsc_and_need_the_templates_variables() -> None:
    inputs = [
        ("system.pdb", "coordinates", {"cell": [50.84, 42.77, 28.95]}),
        ("prev.xsc", "extendedsystem", {"step": 500, "cell": [30.0, 31.0, 32.0]}),
    ]
    names = {"cell_x", "cell_y", "cell_z", "first_step"}
    assert suggested_values(names, inputs) == {"cell_x": 30.0, "cell_y": 31.0, "cell_z": 32.0, "first_step": 500}
    assert suggested_values(names, inputs[:1]) == {"cell_x": 50.84, "cell_y": 42.77, "cell_z": 28.95}
    assert suggested_values({"temperature"}, inputs) == {}
    assert file_facts("system.PDB", INPUTS / "1ubq_head.pdb") == {"cell": [50.84, 42.77, 28.95]}
    assert file_facts("system.psf", INPUTS / "1ubq_head.pdb") == {}
