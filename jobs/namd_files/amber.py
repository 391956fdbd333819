"""AMBER files: parm7/prmtop topologies (NAMD's `parmfile`), read as NAMD 3.0's `AmberParm7Reader`
(src/ReadAmberParm.C) reads them, every %FLAG section's size checked against its POINTERS; and ASCII
inpcrd/rst7 coordinates (NAMD's `ambercoor`), read as NAMD's `PDB` constructor (src/PDB.C) reads them.

Knows nothing of other formats, of Django or of the cluster.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jobs.namd_files.errors import InputFileInvalid, excerpt
from jobs.namd_files.fortran_format import FortranFormat, parse_fortran_format
from jobs.namd_files.sscanf import is_float, leading_int

# ------------------------------------------------------------------ AMBER parm7 (NAMD's `parmfile`)

PRMTOP_REWRITE = "Write the topology again with tleap or ParmEd."
# %VERSION as NAMD's sscanf("%%VERSION VERSION_STAMP = %9s DATE = %8s %8s") must read it, or it gives up.
PRMTOP_VERSION = re.compile(rb"%VERSION\s*VERSION_STAMP\s*=\s*\S+\s*DATE\s*=\s*\S+\s+\S")
PRMTOP_VALUE_FLAGS = frozenset(
    {  # small sections whose values size others
        "POINTERS",
        "SOLVENT_POINTERS",
        "IPOL",
        "CMAP_COUNT",
        "CHARMM_CMAP_COUNT",
        "CMAP_RESOLUTION",
        "CHARMM_CMAP_RESOLUTION",
        "CHARMM_UREY_BRADLEY_COUNT",
        "CHARMM_NUM_IMPROPERS",
        "CHARMM_NUM_IMPR_TYPES",
    }
)
PRMTOP_REQUIRED = (  # NAMD only warns of a missing section, then builds the molecule from the empty list
    "ATOM_NAME",
    "CHARGE",
    "MASS",
    "ATOM_TYPE_INDEX",
    "NUMBER_EXCLUDED_ATOMS",
    "NONBONDED_PARM_INDEX",
    "RESIDUE_LABEL",
    "RESIDUE_POINTER",
    "BOND_FORCE_CONSTANT",
    "BOND_EQUIL_VALUE",
    "ANGLE_FORCE_CONSTANT",
    "ANGLE_EQUIL_VALUE",
    "DIHEDRAL_FORCE_CONSTANT",
    "DIHEDRAL_PERIODICITY",
    "DIHEDRAL_PHASE",
    "LENNARD_JONES_ACOEF",
    "LENNARD_JONES_BCOEF",
    "BONDS_INC_HYDROGEN",
    "BONDS_WITHOUT_HYDROGEN",
    "ANGLES_INC_HYDROGEN",
    "ANGLES_WITHOUT_HYDROGEN",
    "DIHEDRALS_INC_HYDROGEN",
    "DIHEDRALS_WITHOUT_HYDROGEN",
    "EXCLUDED_ATOMS_LIST",
    "AMBER_ATOM_TYPE",
)


def _prmtop_sections(stream: BinaryIO, name: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Values per %FLAG section, and the values of the small sections that size others (NAMD's stage 1)."""

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("PRMTOP_INVALID", f"{name}: {message}")

    first = stream.readline()
    if not first.startswith(b"%VERSION"):
        raise fail(
            "it does not start with a %VERSION line, so it is not an AMBER parm7/prmtop file (a topology in the "
            "pre-2000 format must be converted with ParmEd first)."
        )
    sizes: dict[str, int] = {}
    values: dict[str, list[int]] = {}
    flag: str | None = None
    form: FortranFormat | None = None
    for line_no, raw in enumerate(itertools.chain([first], stream), start=1):
        line = raw.replace(b"\r", b"").rstrip(b"\n")  # NAMD drops every \r (files written on Windows)
        if line.startswith(b"%"):
            if line.startswith(b"%COMMENT"):
                continue
            if line.startswith(b"%VERSION"):
                if not PRMTOP_VERSION.match(line):
                    raise fail(f"line {line_no} is not the '%VERSION VERSION_STAMP = ... DATE = ...' NAMD reads")
                continue
            if line.startswith(b"%FLAG"):
                words = line[len(b"%FLAG") :].split()
                flag, form = (words[0].decode("latin-1") if words else ""), None
                sizes.setdefault(flag, 0)
                continue
            if line.startswith(b"%FORMAT"):
                if flag is None:
                    raise fail(f"line {line_no} is a %FORMAT before any %FLAG, where NAMD stops. " + PRMTOP_REWRITE)
                form = parse_fortran_format(line)
                if form is None:
                    raise fail(
                        f"line {line_no} ('{excerpt(line)}') is not a Fortran format NAMD can read. " + PRMTOP_REWRITE
                    )
                continue
        if flag is None or form is None:
            continue
        taken = form.count(line)
        if taken and (bad := form.bad_field(line, taken)) is not None:
            raise fail(
                f"line {line_no}, in %FLAG {flag}, holds '{excerpt(bad)}' where its %FORMAT wants a number: "
                "the file is damaged. " + PRMTOP_REWRITE
            )
        sizes[flag] += taken
        if flag in PRMTOP_VALUE_FLAGS:
            values.setdefault(flag, []).extend(form.ints(line, taken))
    return sizes, values


def _padded(values: dict[str, list[int]], flag: str, length: int) -> list[int]:
    """The first `length` values of a small section, zeros for those it lacks (its size is checked apart)."""
    return [*values.get(flag, []), *[0] * length][:length]


def _prmtop_expected(sizes: dict[str, int], values: dict[str, list[int]]) -> Iterator[tuple[str, int]]:
    """(section, values it must hold) in the order NAMD's read_amber_parm_stage2 checks them, for the sections
    present: NAMD only warns of a missing one."""
    pointers = values["POINTERS"]
    natom, ntypes, nbonh, _, ntheth, _, nphih, _, _, _, nnb, nres, nbona, ntheta, nphia = pointers[:15]
    numbnd, numang, nptra, _, nphb = pointers[15:20]
    ifbox, ifcap = pointers[27], pointers[29]
    pairs = ntypes * (ntypes + 1) // 2
    yield from [
        ("ATOM_NAME", natom),
        ("CHARGE", natom),
        ("ATOMIC_NUMBER", natom),
        ("MASS", natom),
        ("ATOM_TYPE_INDEX", natom),
        ("NUMBER_EXCLUDED_ATOMS", natom),
        ("NONBONDED_PARM_INDEX", ntypes * ntypes),
        ("RESIDUE_LABEL", nres),
        ("RESIDUE_POINTER", nres),
        ("BOND_FORCE_CONSTANT", numbnd),
        ("BOND_EQUIL_VALUE", numbnd),
        ("ANGLE_FORCE_CONSTANT", numang),
        ("ANGLE_EQUIL_VALUE", numang),
        ("DIHEDRAL_FORCE_CONSTANT", nptra),
        ("DIHEDRAL_PERIODICITY", nptra),
        ("DIHEDRAL_PHASE", nptra),
        ("SCEE_SCALE_FACTOR", nptra),
        ("SCNB_SCALE_FACTOR", nptra),
        ("LENNARD_JONES_ACOEF", pairs),
        ("LENNARD_JONES_BCOEF", pairs),
        ("BONDS_INC_HYDROGEN", 3 * nbonh),
        ("BONDS_WITHOUT_HYDROGEN", 3 * nbona),
        ("ANGLES_INC_HYDROGEN", 4 * ntheth),
        ("ANGLES_WITHOUT_HYDROGEN", 4 * ntheta),
        ("DIHEDRALS_INC_HYDROGEN", 5 * nphih),
        ("DIHEDRALS_WITHOUT_HYDROGEN", 5 * nphia),
        ("EXCLUDED_ATOMS_LIST", nnb),
        ("HBOND_ACOEF", nphb),
        ("HBOND_BCOEF", nphb),
        ("AMBER_ATOM_TYPE", natom),
        ("TREE_CHAIN_CLASSIFICATION", natom),
    ]
    if ifbox > 0:
        yield "SOLVENT_POINTERS", 3
        if "SOLVENT_POINTERS" in sizes:
            yield "ATOMS_PER_MOLECULE", _padded(values, "SOLVENT_POINTERS", 2)[1]
        yield "BOX_DIMENSIONS", 4
    if ifcap > 0:
        yield from [("CAP_INFO", 1), ("CAP_INFO2", 4)]
    yield from [("RADIUS_SET", 1), ("RADII", natom), ("SCREEN", natom)]
    if _padded(values, "IPOL", 1)[0] > 0:
        yield "POLARIZABILITY", natom
    charmm = "TITLE" not in sizes  # a CHARMM force field in AMBER format ("chamber") has CTITLE instead
    if charmm:
        yield "CHARMM_UREY_BRADLEY_COUNT", 2
        bradley, bradley_types = _padded(values, "CHARMM_UREY_BRADLEY_COUNT", 2)
        yield from [
            ("CHARMM_UREY_BRADLEY", 3 * bradley),
            ("CHARMM_UREY_BRADLEY_FORCE_CONSTANT", bradley_types),
            ("CHARMM_UREY_BRADLEY_EQUIL_VALUE", bradley_types),
            ("CHARMM_NUM_IMPROPERS", 1),
            ("CHARMM_IMPROPERS", 5 * _padded(values, "CHARMM_NUM_IMPROPERS", 1)[0]),
        ]
        (improper_types,) = _padded(values, "CHARMM_NUM_IMPR_TYPES", 1)
        yield from [
            ("CHARMM_IMPROPER_FORCE_CONSTANT", improper_types),
            ("CHARMM_IMPROPER_PHASE", improper_types),
            ("LENNARD_JONES_14_ACOEF", pairs),
            ("LENNARD_JONES_14_BCOEF", pairs),
        ]
    cmap = "CHARMM_CMAP_" if charmm else "CMAP_"  # ff19SB has CMAP terms too, without the CHARMM_ prefix
    if cmap + "COUNT" in sizes:
        yield cmap + "COUNT", 2
        terms, kinds = _padded(values, cmap + "COUNT", 2)
        yield cmap + "RESOLUTION", kinds
        resolutions = values.get(cmap + "RESOLUTION", [])
        for number, resolution in enumerate(resolutions[:kinds], start=1):
            yield f"{cmap}PARAMETER_{number:02d}", resolution * resolution
        yield cmap + "INDEX", 6 * terms


def prmtop_atom_count(path: Path) -> int:
    """NATOM, the first of an AMBER parm7/prmtop's POINTERS, every section's size checked as NAMD checks it.
    Raises InputFileInvalid (PRMTOP_INVALID)."""
    with path.open("rb") as stream:
        sizes, values = _prmtop_sections(stream, path.name)

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("PRMTOP_INVALID", f"{path.name}: {message}")

    if "TITLE" not in sizes and "CTITLE" not in sizes:
        raise fail("it has no %FLAG TITLE section, which NAMD requires of a parm7 file. " + PRMTOP_REWRITE)
    if "POINTERS" not in sizes:
        raise fail(
            "it has no %FLAG POINTERS section, from which NAMD takes the atom count and the size of every other "
            "section. " + PRMTOP_REWRITE
        )
    if sizes["POINTERS"] < 31:
        raise fail(f"%FLAG POINTERS holds {sizes['POINTERS']} values, NAMD needs at least 31. " + PRMTOP_REWRITE)
    if min(values["POINTERS"]) < 0 or values["POINTERS"][0] == 0:
        raise fail("its POINTERS hold a negative count, or no atoms. " + PRMTOP_REWRITE)
    for flag, expected in _prmtop_expected(sizes, values):
        if flag not in sizes and flag in PRMTOP_REQUIRED:
            raise fail(
                f"it has no %FLAG {flag} section, without which NAMD cannot build the molecule. " + PRMTOP_REWRITE
            )
        if flag in sizes and sizes[flag] != expected:
            raise fail(
                f"%FLAG {flag} holds {sizes[flag]} values but its POINTERS call for {expected}: the file is "
                "truncated or was edited by hand. " + PRMTOP_REWRITE
            )
    return values["POINTERS"][0]


# ------------------------------------------------------------------ AMBER coordinates (NAMD's `ambercoor`)


def inpcrd_atom_count(path: Path) -> int:
    """The atom count on an ASCII inpcrd/rst7's second line, its coordinates read as NAMD reads them (6F12.7, two
    atoms a line). Raises InputFileInvalid (INPCRD_INVALID)."""

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("INPCRD_INVALID", f"{path.name}: {message}")

    with path.open("rb") as stream:
        if stream.read(4)[:3] in (b"CDF", b"\x89HD"):
            raise fail(
                "it is a NetCDF restart, and NAMD reads only ASCII coordinates: convert it with cpptraj or ParmEd "
                "(or write it with ntxo=1)."
            )
        stream.seek(0)
        lines = iter(stream)
        if not next(lines, b"").endswith(b"\n"):
            raise fail("it ends in its title line: the atom count must follow on line 2.")
        natom, line_no = None, 1
        for raw in lines:  # NAMD's fscanf("%d") skips blank lines to the count
            line_no += 1
            if raw.strip():
                natom = leading_int(raw)
                break
        if natom is None or natom <= 0:
            raise fail(
                f"line {line_no} must start with the number of atoms (then, in a restart, the time): it is not an "
                "AMBER coordinate file."
            )
        for pair in range((natom + 1) // 2):
            raw = next(lines, b"")
            line_no += 1
            atoms = 1 if 2 * pair + 1 == natom else 2
            body = raw.rstrip(b"\n")
            if len(body) < 36 * atoms or b"\0" in body[: 36 * atoms]:
                raise fail(
                    f"line {line_no} should hold x y z of atoms {2 * pair + 1}"
                    f"{'' if atoms == 1 else f' and {2 * pair + 2}'} in 12 columns each (6F12.7), but it is "
                    f"'{excerpt(body)}': the file is truncated or its atom count ({natom}) is wrong."
                )
            fields = [body[i : i + 12] for i in range(0, 36 * atoms, 12)]
            if not all(is_float(field.strip()) for field in fields):
                raise fail(f"line {line_no} holds '{excerpt(body)}', not coordinates in 12 columns each (6F12.7).")
    return natom
