"""What the 3D view shows of a system: its atoms sorted into three parts (the solute, then the ions, then the
water), thinned when the system is too large to draw, each part written as a PDB the browser's viewer reads,
the periodic cell as vectors and an origin, and the atoms a restraint file marks.

The parts are contiguous in the view's atom order, so a frame of any part is one slice of a frame in that
order (`jobs.viewer.frame_store`). The solute is everything that is neither water nor a lone ion: protein,
nucleic acids, lipids, ligands. Water is found by residue name (every water model's usual names), ions as
residues of one atom of an ion's element. Pure: no Django, no files.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from jobs.viewer.atoms import Atoms

MAX_SHOWN_ATOMS = 500_000  # larger systems are thinned: a browser tab stays responsive
PARTS = ("solute", "ions", "water")
WATER_NAMES = frozenset(
    {
        "TIP3",
        "TIP3P",
        "TP3M",
        "TIP4",
        "TIP4P",
        "TIP5",
        "TIP5P",
        "T3P",
        "T4P",
        "T4E",
        "SPC",
        "SPCE",
        "WAT",
        "HOH",
        "H2O",
        "SOL",
        "OPC",
        "OPC3",
        "SWM4",
        "SWM6",
        "TIPS",
        "DOD",
    }
)
ION_ELEMENTS = frozenset(
    {
        "Li",
        "Na",
        "K",
        "Rb",
        "Cs",
        "Mg",
        "Ca",
        "Sr",
        "Ba",
        "Zn",
        "Cd",
        "Mn",
        "Fe",
        "Co",
        "Ni",
        "Cu",
        "F",
        "Cl",
        "Br",
        "I",
    }
)
POLYMER_NAMES = frozenset(
    {
        "ALA",
        "ARG",
        "ASN",
        "ASP",
        "CYS",
        "GLN",
        "GLU",
        "GLY",
        "HIS",
        "HSD",
        "HSE",
        "HSP",
        "HID",
        "HIE",
        "HIP",
        "ILE",
        "LEU",
        "LYS",
        "MET",
        "PHE",
        "PRO",
        "SER",
        "THR",
        "TRP",
        "TYR",
        "VAL",
        "CYX",
        "ASH",
        "GLH",
        "LYN",
        "ACE",
        "NME",
        "NMA",
        "ADE",
        "CYT",
        "GUA",
        "THY",
        "URA",
        "DA",
        "DC",
        "DG",
        "DT",
        "A",
        "C",
        "G",
        "U",
        "RA",
        "RC",
        "RG",
        "RU",
        "DA5",
        "DA3",
        "DC5",
        "DC3",
        "DG5",
        "DG3",
        "DT5",
        "DT3",
        "A5",
        "A3",
        "C5",
        "C3",
        "G5",
        "G3",
        "U5",
        "U3",
    }
)
CHAIN_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Cell:
    vectors: tuple[tuple[float, float, float], ...]  # a, b, c in Å
    origin: tuple[float, float, float]  # NAMD's cellOrigin: the centre of the box

    def as_json(self) -> dict[str, list]:
        return {"vectors": [list(vector) for vector in self.vectors], "origin": list(self.origin)}


def cell_from_lengths(
    a: float, b: float, c: float, alpha: float, beta: float, gamma: float, origin: tuple[float, float, float]
) -> Cell:
    """The box vectors of a cell given as lengths and angles (degrees), a along x and b in the xy plane."""
    ca, cb, cg = (math.cos(math.radians(angle)) for angle in (alpha, beta, gamma))
    sg = math.sin(math.radians(gamma)) or 1.0
    cy = (ca - cb * cg) / sg
    cz = math.sqrt(max(0.0, 1.0 - cb * cb - cy * cy))
    vectors = ((a, 0.0, 0.0), (b * cg, b * sg, 0.0), (c * cb, c * cy, c * cz))
    return Cell(tuple(tuple(round(v, 4) for v in vector) for vector in vectors), origin)


def residue_spans(atoms: Atoms) -> list[tuple[int, int]]:
    """(start, end) of each residue: a run of atoms with the same segment, residue number and name."""
    spans: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(atoms) + 1):
        if index == len(atoms) or (atoms.segid[index], atoms.resid[index], atoms.resname[index]) != (
            atoms.segid[start],
            atoms.resid[start],
            atoms.resname[start],
        ):
            spans.append((start, index))
            start = index
    return spans


def residue_part(atoms: Atoms, start: int, end: int) -> str:
    if atoms.resname[start].upper() in WATER_NAMES:
        return "water"
    if end - start == 1 and atoms.element[start] in ION_ELEMENTS:
        return "ions"
    return "solute"


@dataclass
class Scene:
    """The shown atoms: `order[i]` is the system's index of the view's atom i; parts follow PARTS, in order."""

    atom_count: int
    order: array
    part_sizes: dict[str, int]
    note: str = ""

    def part_range(self, part: str) -> tuple[int, int]:
        start = 0
        for name in PARTS:
            if name == part:
                return start, start + self.part_sizes[name]
            start += self.part_sizes[name]
        raise KeyError(part)


def build_scene(atoms: Atoms, max_atoms: int = MAX_SHOWN_ATOMS) -> Scene:
    """The parts of a system; above `max_atoms`, every k-th water (or only the first segments of the solute)."""
    grouped: dict[str, list[tuple[int, int]]] = {part: [] for part in PARTS}
    for start, end in residue_spans(atoms):
        grouped[residue_part(atoms, start, end)].append((start, end))
    sizes = {part: sum(end - start for start, end in spans) for part, spans in grouped.items()}
    note = ""
    if sum(sizes.values()) > max_atoms:
        grouped, note = _thinned(grouped, sizes, len(atoms), max_atoms)
    order = array("i")
    part_sizes = {}
    for part in PARTS:
        before = len(order)
        for start, end in grouped[part]:
            order.extend(range(start, end))
        part_sizes[part] = len(order) - before
    return Scene(atom_count=len(atoms), order=order, part_sizes=part_sizes, note=note)


def _thinned(
    grouped: dict[str, list[tuple[int, int]]], sizes: dict[str, int], total: int, max_atoms: int
) -> tuple[dict[str, list[tuple[int, int]]], str]:
    kept = sizes["solute"] + sizes["ions"]
    if kept < max_atoms and grouped["water"]:
        room = max_atoms - kept
        every = math.ceil(sizes["water"] / room)
        waters = grouped["water"][::every]
        shown = kept + sum(end - start for start, end in waters)
        note = (
            f"This system has {total:,} atoms: the view shows all of its solute and ions and every {every}th water "
            f"molecule ({shown:,} atoms), so that the page stays responsive."
        )
        return {**grouped, "water": waters}, note
    solute: list[tuple[int, int]] = []
    count = 0
    for span in grouped["solute"]:
        if count + span[1] - span[0] > max_atoms:
            break
        solute.append(span)
        count += span[1] - span[0]
    note = (
        f"This system has {total:,} atoms: the view shows the first {count:,} atoms of its solute, in file order, "
        "without water or ions, so that the page stays responsive."
    )
    return {"solute": solute, "ions": [], "water": []}, note


def restrained_indices(scene: Scene, flags: list[bool]) -> dict[str, list[int]]:
    """For each part, the indices (in the part) of the shown atoms whose flag is set."""
    marked: dict[str, list[int]] = {}
    for part in PARTS:
        start, end = scene.part_range(part)
        marked[part] = [i - start for i in range(start, end) if flags[scene.order[i]]]
    return marked


def _chain_ids(atoms: Atoms, order: array) -> dict[str, str]:
    ids: dict[str, str] = {}
    for index in order:
        segid = atoms.segid[index]
        if segid not in ids:
            ids[segid] = CHAIN_IDS[len(ids) % len(CHAIN_IDS)]
    return ids


def _atom_name(name: str, element: str) -> str:
    """PDB columns 13-16: a one-letter element's name starts in column 14."""
    if len(name) >= 4 or len(element) == 2:
        return name[:4].ljust(4)
    return f" {name}".ljust(4)


def part_pdb(atoms: Atoms, scene: Scene, part: str) -> bytes:
    """The part's atoms as a PDB (initial coordinates, segment in columns 73-76, element in 77-78). No CRYST1:
    the view draws NAMD's cell itself, centred on its origin."""
    start, end = scene.part_range(part)
    chains = _chain_ids(atoms, scene.order)
    lines = [f"REMARK   1 {part.upper()} OF A {scene.atom_count}-ATOM SYSTEM, AS THE NAMD PORTAL SHOWS IT"]
    xyz = atoms.xyz
    for serial, view_index in enumerate(range(start, end), start=1):
        i = scene.order[view_index]
        resname = atoms.resname[i]
        record = "ATOM  " if resname.upper() in POLYMER_NAMES else "HETATM"
        resid, insertion = _residue_number(atoms.resid[i])
        lines.append(
            f"{record}{serial % 100000:5d} {_atom_name(atoms.name[i], atoms.element[i])} {resname[:4]:<4}"
            f"{chains[atoms.segid[i]]}{resid % 10000:4d}{insertion:1}   "
            f"{_coordinate(xyz[3 * i])}{_coordinate(xyz[3 * i + 1])}{_coordinate(xyz[3 * i + 2])}"
            f"  1.00  0.00      {atoms.segid[i][:4]:<4}{atoms.element[i]:>2}"
        )
    lines.append("END")
    return ("\n".join(lines) + "\n").encode("latin-1", errors="replace")


def _residue_number(text: str) -> tuple[int, str]:
    """A PSF residue number with its insertion code (`12A`): (12, "A")."""
    digits = text.lstrip("-")
    number = digits[: len(digits) - len(digits.lstrip("0123456789"))] if digits else ""
    sign = -1 if text.startswith("-") else 1
    return (sign * int(number) if number else 0), text[len(text) - len(digits) + len(number) :][:1]


def _coordinate(value: float) -> str:
    text = f"{value:8.3f}"
    return text if len(text) == 8 else f"{value:8.2f}"[:8]
