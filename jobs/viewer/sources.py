"""Which files the 3D view is built from, read from a job's config as NAMD reads it: the structure and its
coordinates (PSF + PDB, AMBER parm7 + inpcrd, GROMACS .top + .gro; NAMD's binary restart coordinates first
when the config reads them), the periodic cell (`cellBasisVector1-3` and `cellOrigin`, or the
`extendedSystem` file), the atoms a restraint marks (`constraints` with `consref`/`conskfile`/`conskcol`,
`fixedAtoms` with `fixedAtomsFile`/`fixedAtomsCol`; NAMD's default column is O) and the trajectory it writes
(`DCDfile`, or `<outputName>.dcd`, when `DCDfreq` is set). Paths are in the job folder. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.viewer.scene import Cell
from templates_app.namd_config import ConfigCheck, job_path

ON = ("on", "yes", "true", "1")


@dataclass(frozen=True)
class ViewSources:
    kind: str  # "psf", "amber" or "gromacs"
    structure: str  # the file that names the atoms
    coordinates: str  # the file of their starting positions
    restart_coordinates: str = ""  # NAMD's binary .coor, read first when there
    restraint_file: str = ""
    restraint_column: str = "O"
    restraint_label: str = ""
    cell: Cell | None = None
    extended_system: str = ""
    trajectory: str = ""


class NoStructure(ValueError):
    """The config names no structure the view can read."""


def _vector(text: str | None) -> tuple[float, float, float] | None:
    try:
        values = tuple(float(word) for word in (text or "").split())
    except ValueError:
        return None
    return values if len(values) == 3 else None  # type: ignore[return-value]


def config_cell(check: ConfigCheck) -> Cell | None:
    vectors = [_vector(check.value(f"cellbasisvector{axis}")) for axis in (1, 2, 3)]
    if any(vector is None for vector in vectors):
        return None
    origin = _vector(check.value("cellorigin")) or (0.0, 0.0, 0.0)
    return Cell(tuple(vectors), origin)  # type: ignore[arg-type]


def view_sources(check: ConfigCheck) -> ViewSources:
    """The view's files from a config. Raises NoStructure."""
    config_path = check.reading.config_path

    def path(keyword: str) -> str:
        value = check.value(keyword)
        return (job_path(config_path, value.strip()) or "") if value and value.strip() else ""

    def is_on(keyword: str) -> bool:
        return (check.value(keyword) or "").strip().lower() in ON

    if is_on("amber") and path("parmfile") and path("ambercoor"):
        kind, structure, coordinates = "amber", path("parmfile"), path("ambercoor")
    elif is_on("gromacs") and path("grocoorfile"):
        kind, structure, coordinates = "gromacs", path("grocoorfile"), path("grocoorfile")
    elif path("structure") and path("coordinates"):
        kind, structure, coordinates = "psf", path("structure"), path("coordinates")
    else:
        raise NoStructure("The config names no structure and coordinates the view can read.")
    restraint_file, column, label = "", "O", ""
    if is_on("constraints") and (path("conskfile") or path("consref")):
        restraint_file = path("conskfile") or path("consref")
        column = (check.value("conskcol") or "O").strip().upper()
        label = f"restrained by {restraint_file} (column {column})"
    elif is_on("fixedatoms"):
        restraint_file = path("fixedatomsfile") or (coordinates if kind == "psf" else "")
        column = (check.value("fixedatomscol") or "O").strip().upper()
        label = f"fixed by {restraint_file} (column {column})" if restraint_file else ""
    trajectory = ""
    frequency = (check.value("dcdfreq") or "").strip()
    if frequency.isdigit() and int(frequency) > 0:
        output = check.value("outputname")
        dcd = check.value("dcdfile") or (f"{output.strip()}.dcd" if output and output.strip() else "")
        trajectory = job_path(config_path, dcd.strip()) or "" if dcd else ""
    return ViewSources(
        kind=kind,
        structure=structure,
        coordinates=coordinates,
        restart_coordinates=path("bincoordinates"),
        restraint_file=restraint_file,
        restraint_column=column if column in ("X", "Y", "Z", "O", "B") else "O",
        restraint_label=label,
        cell=config_cell(check),
        extended_system=path("extendedsystem"),
        trajectory=trajectory,
    )
