"""What a job's input files already say, read on the portal while they are staged: the periodic cell of a PDB's
CRYST1 record or of an extended-system file (`.xsc`), and the step a restart ends at.

The wizard offers these as the job's values (cell lengths, first step), so a member does not type what the
files hold. Pure readers of a file's first bytes; nothing here raises on a malformed file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from templates_app.namd_config import extended_system_file_facts

PROBE_BYTES = 256 * 1024
CELL_VARIABLES = ("cell_x", "cell_y", "cell_z")
FIRST_STEP_VARIABLE = "first_step"


def pdb_cell(path: Path) -> list[float] | None:
    """a, b, c (Å) of the CRYST1 record (PDB columns 7-15, 16-24, 25-33), None without a usable one."""
    with path.open("rb") as stream:
        for raw in stream.read(PROBE_BYTES).splitlines():
            if raw.startswith(b"CRYST1"):
                try:
                    lengths = [float(raw[6:15]), float(raw[15:24]), float(raw[24:33])]
                except ValueError:
                    return None
                return lengths if all(length > 1.0 for length in lengths) else None  # 1 1 1: "no cell"
            if raw.startswith((b"ATOM", b"HETATM")):
                return None
    return None


def file_facts(name: str, path: Path) -> dict[str, Any]:
    """The facts one staged input holds, by its kind ({} for others or on any trouble)."""
    try:
        if name.lower().endswith(".pdb"):
            cell = pdb_cell(path)
            return {"cell": cell} if cell else {}
        if name.lower().endswith(".xsc"):
            return extended_system_file_facts(path)
    except OSError:
        return {}
    return {}


def suggested_values(variable_names: set[str], inputs: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Values a template's variables can take from its inputs' facts: (name, role, facts) of each input.

    The cell from an extended-system file wins over a PDB's CRYST1; the first step from the restart's `.xsc`.
    """
    values: dict[str, Any] = {}
    by_kind = sorted(inputs, key=lambda item: 0 if item[0].lower().endswith(".xsc") else 1)
    cell = next((facts["cell"] for _, _, facts in by_kind if facts.get("cell")), None)
    if cell and set(CELL_VARIABLES) <= variable_names:
        values.update(dict(zip(CELL_VARIABLES, cell, strict=True)))
    restart = next((facts for _, role, facts in inputs if role == "extendedsystem" and "step" in facts), None)
    if restart and FIRST_STEP_VARIABLE in variable_names:
        values[FIRST_STEP_VARIABLE] = restart["step"]
    return values
