"""The atoms of a job's input structure as the 3D view needs them: names, residues, segments, elements and
coordinates, read from the files NAMD reads (PSF + PDB or NAMD binary coordinates; AMBER parm7 + ASCII
inpcrd/rst7; GROMACS .gro), and a PDB column (occupancy or beta) where a restraint file marks atoms.

Each file is first checked as NAMD reads it (`jobs.namd_files`), so what is read here is known to be whole;
coordinates are float32 `x0 y0 z0 x1 ...` in Å. Knows nothing of Django or the cluster.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from jobs.namd_files import gro_atom_count, inpcrd_atom_count, prmtop_atom_count, psf_atom_count
from jobs.namd_files.coordinates import binary_atom_count, pdb_atom_count
from jobs.namd_files.errors import InputFileInvalid

# Elements by mass (PSF) for the atoms a viewer colours; a lone pair or Drude particle has (almost) no mass.
MASS_ELEMENTS = (
    (0.5, ""),
    (1.5, "H"),
    (5.0, "He"),
    (7.5, "Li"),
    (12.6, "C"),
    (14.6, "N"),
    (16.6, "O"),
    (19.5, "F"),
    (23.5, "Na"),
    (25.0, "Mg"),
    (31.5, "P"),
    (33.0, "S"),
    (36.0, "Cl"),
    (39.5, "K"),
    (41.0, "Ca"),
    (57.0, "Fe"),
    (64.0, "Cu"),
    (66.0, "Zn"),
    (81.0, "Br"),
    (86.0, "Rb"),
    (128.0, "I"),
    (134.0, "Cs"),
)
NAME_ELEMENTS = ("CL", "NA", "MG", "ZN", "CA", "FE", "BR", "LI", "RB", "CS", "BA", "CD", "CU", "MN")
# CHARMM's ions are named for themselves (atom SOD in residue SOD): their elements, where no mass is given.
CHARMM_IONS = {
    "SOD": "Na",
    "CLA": "Cl",
    "POT": "K",
    "CAL": "Ca",
    "CES": "Cs",
    "LIT": "Li",
    "RUB": "Rb",
    "BAR": "Ba",
    "ZN2": "Zn",
    "CD2": "Cd",
}


def element_from_mass(mass: float) -> str:
    for limit, element in MASS_ELEMENTS:
        if mass < limit:
            return element
    return ""


def element_from_name(name: str, resname: str = "") -> str:
    """A guess from the atom name: two-letter elements only where the atom is its own residue (an ion)."""
    upper, residue = name.upper(), resname.upper().rstrip("+-0123456789")
    if upper in CHARMM_IONS:
        return CHARMM_IONS[upper]
    letters = "".join(ch for ch in upper if ch.isalpha())
    if not letters:
        return ""
    if letters[:2] in NAME_ELEMENTS and residue in (letters, letters[:2], "ION"):
        return letters[0] + letters[1].lower()
    return letters[0]


@dataclass
class Atoms:
    """One list per field, all of the same length; `xyz` is empty until coordinates are read."""

    segid: list[str] = field(default_factory=list)
    resid: list[str] = field(default_factory=list)
    resname: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    element: list[str] = field(default_factory=list)
    xyz: array = field(default_factory=lambda: array("f"))

    def __len__(self) -> int:
        return len(self.name)

    def append(self, segid: str, resid: str, resname: str, name: str, element: str) -> None:
        self.segid.append(segid)
        self.resid.append(resid)
        self.resname.append(resname)
        self.name.append(name)
        self.element.append(element)


def _mismatch(source: str, atoms: int, path: Path, found: int) -> InputFileInvalid:
    return InputFileInvalid(
        "VIEW_ATOM_COUNT_MISMATCH", f"{source} has {atoms} atoms but {path.name} has {found}: they are not one system"
    )


# ------------------------------------------------------------------------------------------------- PSF


def psf_atoms(path: Path) -> Atoms:
    """The atom table of a PSF (segment, residue number, residue name, atom name, mass -> element)."""
    natom = psf_atom_count(path)
    atoms = Atoms()
    with path.open("rb") as stream:
        for raw in stream:
            if b"!NATOM" in raw.upper():
                break
        while len(atoms) < natom:
            fields = stream.readline().split(b"!")[0].split()
            if len(fields) < 8:
                continue  # a blank or comment line, as the check allowed
            segid, resid, resname, name = (value.decode("latin-1") for value in fields[1:5])
            element = element_from_mass(float(fields[7])) or element_from_name(name, resname)
            atoms.append(segid, resid, resname, name, element)
    return atoms


# ------------------------------------------------------------------------------------------------- PDB


def _pdb_records(path: Path) -> list[bytes]:
    records = []
    with path.open("rb") as stream:
        for line in stream:
            if line.startswith((b"ATOM  ", b"HETATM")):
                records.append(line)
            elif line.startswith((b"END", b"ENDMDL")) and records:
                break
    return records


def _float(record: bytes, start: int, end: int, default: float = 0.0) -> float:
    try:
        return float(record[start:end])
    except ValueError:
        return default


def pdb_atoms(path: Path) -> Atoms:
    """Atoms and coordinates of a PDB's ATOM/HETATM records (segment from columns 73-76, else the chain)."""
    pdb_atom_count(path)
    atoms = Atoms()
    coords = []
    for record in _pdb_records(path):
        text = record.decode("latin-1").rstrip("\r\n")
        name, resname = text[12:16].strip(), text[17:21].strip()
        segid = text[72:76].strip() or text[21:22].strip()
        element = text[76:78].strip().capitalize() or element_from_name(name, resname)
        atoms.append(segid, text[22:27].strip(), resname, name, element)
        coords.extend((_float(record, 30, 38), _float(record, 38, 46), _float(record, 46, 54)))
    atoms.xyz = array("f", coords)
    return atoms


def pdb_coordinates(path: Path, atoms: int) -> array:
    """x y z of each ATOM/HETATM record of a PDB that must have `atoms` of them."""
    found = pdb_atom_count(path)
    if found != atoms:
        raise _mismatch("the structure", atoms, path, found)
    coords = []
    for record in _pdb_records(path):
        coords.extend((_float(record, 30, 38), _float(record, 38, 46), _float(record, 46, 54)))
    return array("f", coords)


PDB_COLUMNS = {"X": (30, 38), "Y": (38, 46), "Z": (46, 54), "O": (54, 60), "B": (60, 66)}


def pdb_column(path: Path, column: str, atoms: int) -> list[float]:
    """A restraint file's column (X, Y, Z, O or B, as NAMD's `conskcol`/`fixedAtomsCol`) for each atom."""
    start, end = PDB_COLUMNS.get(column.upper(), PDB_COLUMNS["O"])
    found = pdb_atom_count(path)
    if found != atoms:
        raise _mismatch("the structure", atoms, path, found)
    return [_float(record, start, end) for record in _pdb_records(path)]


# ------------------------------------------------------------------------------------ NAMD binary coor


def binary_coordinates(path: Path, atoms: int) -> array:
    """NAMD's binary .coor (int32 count, then x y z doubles), as float32."""
    found = binary_atom_count(path)
    if found != atoms:
        raise _mismatch("the structure", atoms, path, found)
    values = array("d")
    values.frombytes(path.read_bytes()[4:])
    if sys.byteorder != "little":
        values.byteswap()
    return array("f", values)


# ---------------------------------------------------------------------------------------------- AMBER


def _prmtop_strings(path: Path, flag: bytes, width: int) -> list[str]:
    values: list[str] = []
    inside = False
    with path.open("rb") as stream:
        for raw in stream:
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"%FLAG"):
                if inside:
                    break
                inside = line.split()[1:2] == [flag]
            elif inside and not line.startswith(b"%"):
                values.extend(line[i : i + width].decode("latin-1").strip() for i in range(0, len(line), width))
    return values


def prmtop_atoms(path: Path) -> Atoms:
    """Atom names and residues of an AMBER parm7 (ATOM_NAME, RESIDUE_LABEL, RESIDUE_POINTER)."""
    natom = prmtop_atom_count(path)
    names = _prmtop_strings(path, b"ATOM_NAME", 4)[:natom]
    labels = _prmtop_strings(path, b"RESIDUE_LABEL", 4)
    pointers = [int(value) for value in _prmtop_strings(path, b"RESIDUE_POINTER", 8) if value]
    atoms = Atoms()
    starts = [*pointers, natom + 1]
    for residue, label in enumerate(labels[: len(pointers)]):
        for index in range(starts[residue] - 1, min(starts[residue + 1] - 1, natom)):
            name = names[index] if index < len(names) else "X"
            atoms.append("", str(residue + 1), label, name, element_from_name(name, label))
    if len(atoms) != natom:
        raise InputFileInvalid("PRMTOP_INVALID", f"{path.name}: its residues do not cover its {natom} atoms")
    return atoms


def inpcrd_coordinates(path: Path, atoms: int) -> array:
    """x y z of an ASCII inpcrd/rst7 (6F12.7) that must hold `atoms` atoms."""
    found = inpcrd_atom_count(path)
    if found != atoms:
        raise _mismatch("the structure", atoms, path, found)
    coords: list[float] = []
    with path.open("rb") as stream:
        lines = iter(stream)
        next(lines)
        for raw in lines:
            if raw.strip():
                break
        while len(coords) < 3 * atoms:
            body = next(lines).rstrip(b"\r\n")
            coords.extend(float(body[i : i + 12]) for i in range(0, min(len(body), 72), 12) if body[i : i + 12].strip())
    return array("f", coords[: 3 * atoms])


# --------------------------------------------------------------------------------------------- GROMACS


def gro_atoms(path: Path) -> Atoms:
    """Atoms and coordinates of a .gro (nm, turned into Å)."""
    natom = gro_atom_count(path)
    atoms = Atoms()
    coords = []
    with path.open("rb") as stream:
        stream.readline()
        stream.readline()
        for _ in range(natom):
            text = stream.readline().decode("latin-1").rstrip("\r\n")
            resname, name = text[5:10].strip(), text[10:15].strip()
            atoms.append("", text[0:5].strip(), resname, name, element_from_name(name, resname))
            coords.extend(10.0 * float(value) for value in text[20:].split()[:3])
    atoms.xyz = array("f", coords)
    return atoms
