"""Structure and coordinate checks on real PSF, AMBER and GROMACS files, and on copies of them broken the ways
NAMD's readers stop on.

The files in tests/fixtures/namd_inputs are verbatim copies of public ones (SOURCES.md there); every broken
copy is made here from one of them, and each edit is checked to have changed the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.namd_files import (
    ROLE_CHECKS,
    InputFileInvalid,
    check_inputs,
    gro_atom_count,
    grotop_atom_count,
    inpcrd_atom_count,
    prmtop_atom_count,
    psf_atom_count,
)

INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_inputs"
Check = Callable[[Path], int]


def edited(tmp_path: Path, name: str, edit: Callable[[str], str]) -> Path:
    """A copy of fixture `name` passed through `edit`, which must change it."""
    text = (INPUTS / name).read_text()
    changed = edit(text)
    assert changed != text
    path = tmp_path / name
    path.write_text(changed)
    return path


def replaced(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) >= count
        return text.replace(old, new, count)

    return edit


def without(start: str, end: str) -> Callable[[str], str]:
    """Drop the text from the line holding `start` up to the line holding `end` (kept)."""

    def edit(text: str) -> str:
        first = text.rindex("\n", 0, text.index(start)) + 1
        last = text.rindex("\n", 0, text.index(end, first)) + 1
        return text[:first] + text[last:]

    return edit


def rejected(check: Check, path: Path, code: str) -> str:
    with pytest.raises(InputFileInvalid) as caught:
        check(path)
    assert caught.value.code == code
    return str(caught.value)


# ------------------------------------------------------------------ real files


@pytest.mark.parametrize(
    ("check", "name", "atoms"),
    [
        (psf_atom_count, "ava_aaa.psf", 72),  # CHARMM-GUI: EXT CMAP CHEQ XPLOR, !NGRP, !MOLNT, !NUMLP, !NCRTERM
        (psf_atom_count, "namd_cgenff.psf", 130),  # VMD psfgen, X-PLOR, I8 columns
        (psf_atom_count, "methanol_ions.psf", 8),  # psfgen EXT, a {...} comment in its title
        (prmtop_atom_count, "ash.parm7", 25),
        (inpcrd_atom_count, "ash.rst7", 25),
        (gro_atom_count, "rb_torsions.gro", 9),  # with velocities
        (grotop_atom_count, "rb_torsions.top", 9),
    ],
)
def test_a_real_file_passes_with_its_atom_count(check: Check, name: str, atoms: int) -> None:
    assert check(INPUTS / name) == atoms


def test_a_real_charmm_format_psf_is_rejected_as_namd_rejects_it(tmp_path: Path) -> None:
    # parmed_ala3.psf has numeric atom types (CHARMM's own format); NAMD stops on its first atom.
    message = rejected(psf_atom_count, INPUTS / "parmed_ala3.psf", "PSF_INVALID")
    assert "atom 1 has the numeric type '56'" in message
    assert "X-PLOR" in message
    # Everything else in it is what NAMD reads: with type names it passes.
    named = edited(tmp_path, "parmed_ala3.psf", replaced("  N      56  ", "  N    NH3  "))
    message = rejected(psf_atom_count, named, "PSF_INVALID")
    assert "atom 2 has the numeric type '2'" in message


# ------------------------------------------------------------------ PSF broken


def test_a_psf_with_only_its_atoms_names_the_missing_sections(tmp_path: Path) -> None:
    path = edited(tmp_path, "ava_aaa.psf", lambda text: text[: text.index("        70 !NBOND")])
    message = rejected(psf_atom_count, path, "PSF_INVALID")
    assert "ends before the !NBOND section that must follow the 72 atoms" in message
    assert "!NATOM, !NBOND, !NTHETA, !NPHI, !NIMPHI, !NDON, !NACC, !NNB" in message
    assert "psfgen" in message


def test_a_psf_without_its_bonds_section(tmp_path: Path) -> None:
    path = edited(tmp_path, "ava_aaa.psf", without("!NBOND", "!NTHETA"))
    message = rejected(psf_atom_count, path, "PSF_INVALID")
    assert "should start the !NBOND section after the 72 atoms but is '126 !NTHETA: angles'" in message


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        ("127", "!NTHETA says 127 angles but line 146 ('166 !NPHI: dihedrals') comes after 126 of them"),
        ("125", "line 144 holds more numbers after the 125 angles, where NAMD expects !NPHI"),
    ],
)
def test_a_wrong_angle_count(tmp_path: Path, count: str, expected: str) -> None:
    path = edited(tmp_path, "ava_aaa.psf", replaced("       126 !NTHETA", f"       {count} !NTHETA"))
    assert expected in rejected(psf_atom_count, path, "PSF_INVALID")


def test_a_truncated_atom_section(tmp_path: Path) -> None:
    last_atom = "        72 PROB     6        ALA      OT2 "
    path = edited(tmp_path, "ava_aaa.psf", without(last_atom, "!NBOND"))
    message = rejected(psf_atom_count, path, "PSF_INVALID")
    assert "!NATOM says 72 atoms but line 80 ('70 !NBOND: bonds') comes after 71" in message


def test_an_atom_more_than_natom_says(tmp_path: Path) -> None:
    path = edited(tmp_path, "ava_aaa.psf", replaced("        72 !NATOM", "        71 !NATOM"))
    assert "is one atom more than !NATOM says" in rejected(psf_atom_count, path, "PSF_INVALID")


def test_a_bond_to_an_atom_that_is_not_there(tmp_path: Path) -> None:
    path = edited(tmp_path, "methanol_ions.psf", replaced("         2         3\n", "         2         9\n"))
    message = rejected(psf_atom_count, path, "PSF_INVALID")
    assert "line 21 of the bonds (!NBOND) names atom 9, but the atoms are numbered 1 to 8" in message


def test_a_sign_in_a_bond_list(tmp_path: Path) -> None:
    # NAMD_read_int takes digits only: "-3" stops it.
    path = edited(tmp_path, "methanol_ions.psf", replaced("         2         3\n", "         2        -3\n"))
    assert "holds '-3', which NAMD cannot read" in rejected(psf_atom_count, path, "PSF_INVALID")


def test_a_psf_without_nnb(tmp_path: Path) -> None:
    path = edited(tmp_path, "methanol_ions.psf", replaced("       0 !NNB\n", "\n"))
    assert "ends before the !NNB section" in rejected(psf_atom_count, path, "PSF_INVALID")


def test_a_psf_cut_in_its_cross_terms(tmp_path: Path) -> None:
    path = edited(tmp_path, "ava_aaa.psf", lambda text: text[: text.rindex("        50        52")])
    message = rejected(psf_atom_count, path, "PSF_INVALID")
    assert "!NCRTERM says 2 cross-terms but the file ends after 1 of them" in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ava_aaa.psf", "ends right after a number on line 283"),  # its last line is cross-term data
        ("methanol_ions.psf", "its last line (line 47) has no newline"),  # NAMD reads !NGRP's data as lines
    ],
)
def test_a_psf_without_its_final_newline(tmp_path: Path, name: str, expected: str) -> None:
    path = edited(tmp_path, name, lambda text: text.rstrip("\n"))
    assert expected in rejected(psf_atom_count, path, "PSF_INVALID")


def test_sections_namd_does_not_read_are_optional(tmp_path: Path) -> None:
    # !NGRP, !MOLNT and !NUMLP are skipped by NAMD, and !NCRTERM may be absent.
    path = edited(tmp_path, "ava_aaa.psf", lambda text: text[: text.index("        20         0 !NGRP")])
    assert psf_atom_count(path) == 72


def test_lone_pairs_are_read_with_their_hosts(tmp_path: Path) -> None:
    lone_pair = "       1       3 !NUMLP NUMLPH\n       2       1   F   0.3  0.0  0.0\n       8       2       3\n"
    path = edited(tmp_path, "methanol_ions.psf", lambda text: text + "\n" + lone_pair)
    assert psf_atom_count(path) == 8
    wrong_index = edited(
        tmp_path, "methanol_ions.psf", lambda text: text + "\n" + lone_pair.replace(" 1   F", " 2   F")
    )
    assert "is not the lone pair NAMD expects" in rejected(psf_atom_count, wrong_index, "PSF_INVALID")


def test_a_drude_psf_needs_its_drude_columns(tmp_path: Path) -> None:
    path = edited(tmp_path, "methanol_ions.psf", replaced("PSF EXT\n", "PSF EXT DRUDE\n"))
    assert "NAMD reads 11 columns (Drude)" in rejected(psf_atom_count, path, "PSF_INVALID")


def test_a_pdb_is_not_a_psf() -> None:
    pdb = INPUTS.parent / "namd" / "water.pdb"
    assert "its first line does not say 'PSF'" in rejected(psf_atom_count, pdb, "PSF_INVALID")


@pytest.mark.parametrize("name", ["methanol_ions.psf", "ava_aaa.psf"])
def test_every_cut_before_the_last_required_section_is_rejected(tmp_path: Path, name: str) -> None:
    """Cut at each line: the PSF holds up only once !NNB is read and no section is left half read."""
    lines = (INPUTS / name).read_text().splitlines(keepends=True)
    nnb = next(i for i, line in enumerate(lines) if "!NNB" in line)
    crossterms = next((i for i, line in enumerate(lines) if "!NCRTERM" in line), len(lines))
    for cut in range(len(lines)):
        path = tmp_path / name
        path.write_text("".join(lines[:cut]))
        if nnb < cut <= crossterms:
            assert psf_atom_count(path) > 0
        else:
            rejected(psf_atom_count, path, "PSF_INVALID")


# ------------------------------------------------------------------ AMBER broken


def test_a_prmtop_without_pointers(tmp_path: Path) -> None:
    path = edited(tmp_path, "ash.parm7", without("%FLAG POINTERS", "%FLAG ATOM_NAME"))
    message = rejected(prmtop_atom_count, path, "PRMTOP_INVALID")
    assert "it has no %FLAG POINTERS section" in message
    assert "tleap or ParmEd" in message


def test_a_prmtop_with_a_short_charge_section(tmp_path: Path) -> None:
    last_charges = "  4.95464337E+00 -2.71512270E+00  1.77849648E+00  1.77849648E+00  1.77849648E+00\n"
    path = edited(tmp_path, "ash.parm7", replaced(last_charges, ""))
    message = rejected(prmtop_atom_count, path, "PRMTOP_INVALID")
    assert "%FLAG CHARGE holds 20 values but its POINTERS call for 25" in message


def test_a_prmtop_whose_atom_count_is_wrong(tmp_path: Path) -> None:
    path = edited(tmp_path, "ash.parm7", replaced("      25       9      12", "      26       9      12"))
    message = rejected(prmtop_atom_count, path, "PRMTOP_INVALID")
    assert "%FLAG ATOM_NAME holds 25 values but its POINTERS call for 26" in message


def test_a_prmtop_with_a_damaged_number(tmp_path: Path) -> None:
    path = edited(
        tmp_path, "ash.parm7", replaced("  1.60000000E+01  1.40100000E+01", "  1.60000000E+01     ??????????")
    )
    message = rejected(prmtop_atom_count, path, "PRMTOP_INVALID")
    assert "in %FLAG MASS, holds '??????????' where its %FORMAT wants a number" in message


def test_a_prmtop_without_title(tmp_path: Path) -> None:
    path = edited(tmp_path, "ash.parm7", without("%FLAG TITLE", "%FLAG POINTERS"))
    assert "no %FLAG TITLE section" in rejected(prmtop_atom_count, path, "PRMTOP_INVALID")


def test_a_psf_is_not_a_prmtop() -> None:
    message = rejected(prmtop_atom_count, INPUTS / "ava_aaa.psf", "PRMTOP_INVALID")
    assert "does not start with a %VERSION line" in message


def test_every_cut_of_a_prmtop_before_its_last_required_section_is_rejected(tmp_path: Path) -> None:
    lines = (INPUTS / "ash.parm7").read_text().splitlines(keepends=True)
    atom_types = next(i for i, line in enumerate(lines) if line.startswith("%FLAG AMBER_ATOM_TYPE"))
    for cut in range(atom_types + 4):  # the flag, its format and its two lines of types
        path = tmp_path / "ash.parm7"
        path.write_text("".join(lines[:cut]))
        rejected(prmtop_atom_count, path, "PRMTOP_INVALID")
    path.write_text("".join(lines[: atom_types + 4]))
    assert prmtop_atom_count(path) == 25  # the sections after it are optional to NAMD


def test_an_inpcrd_whose_count_is_too_large(tmp_path: Path) -> None:
    path = edited(tmp_path, "ash.rst7", replaced("ACE\n    25\n", "ACE\n    26\n"))
    message = rejected(inpcrd_atom_count, path, "INPCRD_INVALID")
    assert "line 15 should hold x y z of atoms 25 and 26" in message
    assert "its atom count (26) is wrong" in message


def test_a_truncated_inpcrd(tmp_path: Path) -> None:
    path = edited(tmp_path, "ash.rst7", replaced("   6.3597900   8.6477354  -0.8898187\n", ""))
    assert "line 15 should hold x y z of atoms 25 in" in rejected(inpcrd_atom_count, path, "INPCRD_INVALID")


def test_a_gro_is_not_an_inpcrd() -> None:
    message = rejected(inpcrd_atom_count, INPUTS / "rb_torsions.gro", "INPCRD_INVALID")
    assert "line 3 should hold x y z of atoms 1 and 2" in message


def test_a_netcdf_restart_is_not_read_by_namd(tmp_path: Path) -> None:
    path = tmp_path / "md.rst7"
    path.write_bytes(b"CDF\x02\x00\x00\x00\x00")
    assert "NetCDF restart" in rejected(inpcrd_atom_count, path, "INPCRD_INVALID")


# ------------------------------------------------------------------ GROMACS broken


def test_a_gro_with_a_count_too_large(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.gro", replaced("Ethanol\n    9\n", "Ethanol\n   10\n"))
    message = rejected(gro_atom_count, path, "GRO_INVALID")
    assert "line 2 says 10 atoms but the box line follows 9" in message


def test_a_gro_with_a_count_too_small(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.gro", replaced("Ethanol\n    9\n", "Ethanol\n    8\n"))
    assert "line 2 says 8 atoms but more atom lines follow" in rejected(gro_atom_count, path, "GRO_INVALID")


def test_a_gro_without_its_box(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.gro", replaced("   5.01061   5.01061   5.01061\n", ""))
    assert "must be followed by the box line" in rejected(gro_atom_count, path, "GRO_INVALID")


def test_a_psf_is_not_a_gro() -> None:
    message = rejected(gro_atom_count, INPUTS / "methanol_ions.psf", "GRO_INVALID")
    assert "its second line must be the number of atoms" in message


def test_a_top_without_molecules(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.top", lambda text: text[: text.index("[ molecules ]")])
    message = rejected(grotop_atom_count, path, "GROTOP_INVALID")
    assert "it has no [ molecules ] directive" in message


def test_a_top_with_an_include_must_be_preprocessed(tmp_path: Path) -> None:
    include = '#include "oplsaa.ff/forcefield.itp"\n'
    path = edited(tmp_path, "rb_torsions.top", lambda text: include + text)
    message = rejected(grotop_atom_count, path, "GROTOP_INVALID")
    assert "'#include \"oplsaa.ff/forcefield.itp\"'" in message
    assert "gmx grompp -pp" in message


def test_a_top_listing_an_undefined_molecule(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.top", replaced("Ethanol             1\n", "Methanol            1\n"))
    assert "which no [ moleculetype ] defines" in rejected(grotop_atom_count, path, "GROTOP_INVALID")


def test_a_top_counts_every_copy_of_its_molecules(tmp_path: Path) -> None:
    path = edited(tmp_path, "rb_torsions.top", replaced("Ethanol             1\n", "Ethanol             3\n"))
    assert grotop_atom_count(path) == 27


# ------------------------------------------------------------------ roles and agreement


def test_each_keyword_reads_its_format() -> None:
    assert ROLE_CHECKS["structure"] is psf_atom_count
    assert ROLE_CHECKS["parmfile"] is prmtop_atom_count
    assert ROLE_CHECKS["ambercoor"] is inpcrd_atom_count
    assert ROLE_CHECKS["grotopfile"] is grotop_atom_count
    assert ROLE_CHECKS["grocoorfile"] is gro_atom_count


def test_amber_and_gromacs_inputs_agree_with_their_topologies() -> None:
    amber = {"parmfile": [INPUTS / "ash.parm7"], "ambercoor": [INPUTS / "ash.rst7"]}
    gromacs = {"grotopfile": [INPUTS / "rb_torsions.top"], "grocoorfile": [INPUTS / "rb_torsions.gro"]}
    assert check_inputs(amber) == []
    assert check_inputs(gromacs) == []


def test_coordinates_must_agree_with_the_topology_that_defines_the_atoms() -> None:
    problems = check_inputs({"parmFile": [INPUTS / "ash.parm7"], "grocoorfile": [INPUTS / "rb_torsions.gro"]})
    assert [(p.code, p.file) for p in problems] == [("ATOM_COUNT_MISMATCH", "rb_torsions.gro")]
    assert problems[0].message == "the grocoorfile file has 9 atoms but the AMBER topology (parmfile) has 25"
    problems = check_inputs({"structure": [INPUTS / "ava_aaa.psf"], "ambercoor": [INPUTS / "ash.rst7"]})
    assert [p.message for p in problems] == ["the ambercoor file has 25 atoms but the structure (PSF) has 72"]


def test_a_broken_file_is_reported_under_its_code() -> None:
    problems = check_inputs({"structure": [INPUTS / "parmed_ala3.psf"], "grotopfile": [INPUTS / "ash.rst7"]})
    assert [(p.code, p.file) for p in problems] == [
        ("PSF_INVALID", "parmed_ala3.psf"),
        ("GROTOP_INVALID", "ash.rst7"),
    ]
