"""Checks on a job's NAMD input files before submission: each file is what its role says, read the way NAMD
reads it, and the atom counts of structure, coordinates and restart files agree.

The readers follow NAMD 3.0's own: `Molecule::read_psf_file` (src/Molecule.C) for PSF, `AmberParm7Reader`
(src/ReadAmberParm.C) for AMBER parm7, the `PDB` constructors (src/PDB.C) for AMBER and GROMACS coordinates
and `GromacsTopFile` (src/GromacsTopFile.C) for GROMACS topologies. A file NAMD would stop on fails here with
a sentence saying what to do; a file NAMD reads passes, even where it bends a format's rules.

Streams the files line by line (a 300k-atom PSF is tens of MB) and keeps counts, never the records. Knows
nothing of Django or the cluster.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TEXT_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class InputProblem:
    code: str
    message: str
    file: str = ""


class InputFileInvalid(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# sscanf-style prefixes: NAMD reads numbers with %d / %f, which take a number's start and ignore the rest.
INT_START = re.compile(rb"\s*([+-]?\d+)")
FLOAT_START = re.compile(rb"\s*[+-]?(?:\d|\.\d|inf|nan)", re.IGNORECASE)
FLOAT_TOKEN = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")


def _shown(text: bytes, limit: int = 40) -> str:
    """A line as a message may quote it: decoded, stripped, cut."""
    shown = text.decode("latin-1").strip()
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _leading_int(text: bytes) -> int | None:
    match = INT_START.match(text)
    return int(match.group(1)) if match else None


def _is_float(token: bytes) -> bool:
    return FLOAT_TOKEN.fullmatch(token) is not None


# ------------------------------------------------------------------ PSF (NAMD's `structure`)

PSF_SECTIONS = (  # after the atoms, in the order NAMD requires them: keyword, records, atoms a record, lowest index
    ("NBOND", "bonds", 2, 1),
    ("NTHETA", "angles", 3, 1),
    ("NPHI", "dihedrals", 4, 1),
    ("NIMPHI", "impropers", 4, 1),
    ("NDON", "donors", 2, 0),  # a donor or acceptor without its hydrogen or antecedent has 0 in its pair
    ("NACC", "acceptors", 2, 0),
)
PSF_ORDER = "!NATOM, !NBOND, !NTHETA, !NPHI, !NIMPHI, !NDON, !NACC, !NNB"
PSF_REWRITE = "Write the PSF again with psfgen (VMD) or CHARMM-GUI, which write every section NAMD reads."


class PsfStream:
    """A PSF read with NAMD's two primitives: `line()` is NAMD_read_line, `ints()` NAMD_read_int (src/strlib.C)."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.name = name
        self.line_no = 0
        self._lines: Iterator[bytes] = iter(stream)
        self._rest: bytes | None = None  # what NAMD_read_int left of the line it stopped in

    def fail(self, message: str) -> InputFileInvalid:
        return InputFileInvalid("PSF_INVALID", f"{self.name}: {message}")

    def _raw(self) -> bytes | None:
        if self._rest is not None:
            rest, self._rest = self._rest, None
            return rest
        raw = next(self._lines, None)
        if raw is not None:
            self.line_no += 1
        return raw

    def line(self) -> bytes | None:
        """The next line, its {...} comments dropped as NAMD does (they may span lines); None at the end."""
        raw = self._raw()
        if raw is None:
            return None
        kept, start = [], 0
        while (brace := raw.find(b"{", start)) >= 0:
            kept.append(raw[start:brace])
            while (close := raw.find(b"}", brace)) < 0:
                raw = self._raw()
                if raw is None:
                    raise self.fail("a '{' comment is never closed: NAMD reads to the end of the file looking for '}'")
                brace = 0
            start = close + 1
        kept.append(raw[start:])
        line = b"".join(kept)
        if not raw.endswith(b"\n") and line.strip():
            # NAMD_read_line stops with "ABNORMAL EOF FOUND" on a last line without its newline.
            raise self.fail(f"its last line (line {self.line_no}) has no newline at its end, where NAMD stops: add it")
        return line

    def nonblank(self) -> bytes | None:
        while (line := self.line()) is not None:
            if line.strip():
                return line
        return None

    def count(self, line: bytes, keyword: str) -> int:
        """The number before a section's keyword, as NAMD's sscanf("%d") reads it."""
        value = _leading_int(line)
        if value is None or value < 0:
            raise self.fail(f"line {self.line_no} has no count before !{keyword}: '{_shown(line)}'")
        return value

    def ints(
        self, total: int, low: int, high: int, keyword: str, records: str, per: int, count: int, outside: str = ""
    ) -> None:
        """Read `total` integers across lines as NAMD_read_int does: unsigned digits, each in [low, high]."""
        done = 0
        while done < total:
            raw = self._raw()
            if raw is None:
                raise self.fail(
                    f"!{keyword} says {count} {records} but the file ends after {done // per} of them: "
                    "it is truncated. " + PSF_REWRITE
                )
            tokens = raw.split()
            if not tokens:
                continue
            taken = tokens[: total - done]
            if not b"".join(taken).isdigit():
                bad = next(i for i, token in enumerate(taken) if not token.isdigit())
                if b"!" in raw:  # the next section's header: this one holds fewer records than its count
                    raise self.fail(
                        f"!{keyword} says {count} {records} but line {self.line_no} ('{_shown(raw)}') comes after "
                        f"{(done + bad) // per} of them: fix the count or the list. " + PSF_REWRITE
                    )
                raise self.fail(
                    f"line {self.line_no} of the {records} (!{keyword}) holds '{_shown(taken[bad])}', which NAMD "
                    "cannot read as an atom number (it takes digits only). " + PSF_REWRITE
                )
            values = [int(token) for token in taken]
            if min(values) < low or max(values) > high:
                wrong = next(value for value in values if value < low or value > high)
                outside = outside or f"names atom {wrong}, but the atoms are numbered 1 to {high}"
                raise self.fail(
                    f"line {self.line_no} of the {records} (!{keyword}) {outside}: the list does not belong to "
                    "these atoms. " + PSF_REWRITE
                )
            done += len(taken)
            if len(taken) < len(tokens):
                # NAMD_read_int eats the one character after the number; the rest of the line is the next "line".
                end = [match.end() for match in re.finditer(rb"\S+", raw)][len(taken) - 1]
                self._rest = raw[end + 1 :] or None
            elif not raw[-1:].isspace():
                raise self.fail(f"it ends right after a number on line {self.line_no}, where NAMD stops: add a newline")

    def header(self, keyword: str, after: str) -> bytes:
        """The next non-blank line, which must hold `keyword` (NAMD_find_word: anywhere, any case)."""
        line = self.nonblank()
        if line is None:
            raise self.fail(
                f"the file ends before the !{keyword} section that must follow {after}: NAMD reads "
                f"{PSF_ORDER} in this order. " + PSF_REWRITE
            )
        if keyword.encode() not in line.upper():
            fields = line.split()
            if keyword == "NBOND" and len(fields) >= 8 and fields[0].isdigit():
                raise self.fail(
                    f"line {self.line_no} ('{_shown(line)}') is one atom more than !NATOM says: fix the count or "
                    "the atom list. " + PSF_REWRITE
                )
            if all(token.isdigit() for token in fields):
                raise self.fail(
                    f"line {self.line_no} holds more numbers after {after}, where NAMD expects !{keyword}: the count "
                    "before them is too small or the list too long. " + PSF_REWRITE
                )
            raise self.fail(
                f"line {self.line_no} should start the !{keyword} section after {after} but is '{_shown(line)}': "
                f"NAMD reads {PSF_ORDER} in this order. " + PSF_REWRITE
            )
        return line

    def scan(self, *keywords: str) -> tuple[str, bytes] | None:
        """Skip lines (and sections NAMD does not read) to the first holding one of `keywords`; None at the end."""
        while (line := self.nonblank()) is not None:
            upper = line.upper()
            for keyword in keywords:
                if keyword.encode() in upper:
                    return keyword, line
        return None


def _psf_atoms(psf: PsfStream, natom: int, is_drude: bool) -> None:
    """NAMD's read_atoms: `natom` lines of 8 columns (11 for Drude), numbered 1, 2, ..., with type names."""
    number = 0
    while number < natom:
        line = psf.line()
        if line is None:
            raise psf.fail(f"!NATOM says {natom} atoms but the file ends after {number}: it is truncated.")
        text = line.strip()
        if not text or text.startswith(b"!"):
            continue
        fields = text.split()
        readable = (
            len(fields) >= 8 and INT_START.match(fields[0]) and FLOAT_START.match(fields[6])
            and FLOAT_START.match(fields[7])
        )  # fmt: skip
        if readable and is_drude:
            readable = len(fields) >= 11 and INT_START.match(fields[8]) and FLOAT_START.match(fields[9])
            readable = readable and FLOAT_START.match(fields[10])
        if not readable:
            if b"!" in text:
                raise psf.fail(
                    f"!NATOM says {natom} atoms but line {psf.line_no} ('{_shown(text)}') comes after {number}: "
                    "fix the count or the atom list. " + PSF_REWRITE
                )
            columns = "11 columns (Drude)" if is_drude else "8 columns"
            raise psf.fail(
                f"line {psf.line_no} is not an atom line: NAMD reads {columns}: number, segment, residue number, "
                f"residue name, atom name, atom type, charge, mass. It is '{_shown(text)}'."
            )
        if INT_START.match(fields[5]):
            raise psf.fail(
                f"atom {number + 1} has the numeric type '{_shown(fields[5])}': this is a CHARMM-format PSF (or one "
                "with an empty segment name), and NAMD needs the X-PLOR format with type names. Write it with "
                "psfgen (VMD), CHARMM-GUI, or CHARMM's 'write psf card xplor'."
            )
        if _leading_int(fields[0]) != number + 1:
            raise psf.fail(f"atom numbers are out of order at line {psf.line_no}: NAMD expects atom {number + 1}")
        number += 1


def _psf_lone_pairs(psf: PsfStream, numlp: int, natom: int) -> None:
    """NAMD's read_lphosts: `numlp` lines "hosts index F a b c", then the host atoms (index runs 1, hosts+2, ...)."""
    next_index = 1
    for _ in range(numlp):
        line = psf.line()
        if line is None:
            break
        text = line.strip()
        if not text or text.startswith(b"!"):
            continue  # NAMD counts such a line as one of the lone pairs: a blank line here loses one
        fields = text.split()
        hosts = _leading_int(fields[0]) if fields else None
        index = _leading_int(fields[1]) if len(fields) > 1 else None
        if (
            hosts is None or hosts not in (2, 3) or len(fields) < 6 or index != next_index or fields[2] != b"F"
            or not all(FLOAT_START.match(field) for field in fields[3:6])
        ):  # fmt: skip
            raise psf.fail(
                f"line {psf.line_no} is not the lone pair NAMD expects ('hosts {next_index} F distance angle "
                f"dihedral', with 2 or 3 hosts): '{_shown(text)}'. " + PSF_REWRITE
            )
        next_index += hosts + 1
    psf.ints(next_index - 1, 1, natom, "NUMLP", "lone pair hosts", 1, next_index - 1)


def _psf_anisotropies(psf: PsfStream, numaniso: int, natom: int) -> None:
    """NAMD's read_anisos: `numaniso` lines of three constants, then four atoms each."""
    for _ in range(numaniso):
        line = psf.line()
        if line is None:
            break
        text = line.strip()
        if not text or text.startswith(b"!"):
            continue
        fields = text.split()
        if len(fields) < 3 or not all(FLOAT_START.match(field) for field in fields[:3]):
            raise psf.fail(f"line {psf.line_no} of !NUMANISO should hold three constants: '{_shown(text)}'")
    psf.ints(4 * numaniso, 1, natom, "NUMANISO", "anisotropic terms", 4, numaniso)


def _read_psf(psf: PsfStream) -> int:
    header = psf.nonblank()
    if header is None or b"PSF" not in header.upper():
        raise psf.fail("its first line does not say 'PSF': it is not a PSF file. Upload the structure as a PSF.")
    is_drude = b"DRUDE" in header.upper()
    line = psf.nonblank()
    if line is None or b"NTITLE" not in line.upper():
        raise psf.fail("the line after 'PSF' must be the !NTITLE count of title lines. " + PSF_REWRITE)
    for _ in range(psf.count(line, "NTITLE")):
        if psf.nonblank() is None:
            raise psf.fail("the file ends in its title, before !NATOM. " + PSF_REWRITE)
    line = psf.nonblank()
    if line is None or b"NATOM" not in line.upper():
        shown = "the end of the file" if line is None else f"'{_shown(line)}'"
        raise psf.fail(f"!NATOM must follow the title, not {shown}. " + PSF_REWRITE)
    natom = psf.count(line, "NATOM")
    if natom == 0:
        raise psf.fail("!NATOM is 0: the structure has no atoms.")
    _psf_atoms(psf, natom, is_drude)
    after = f"the {natom} atoms"
    for keyword, records, per, low in PSF_SECTIONS:
        count = psf.count(psf.header(keyword, after), keyword)
        psf.ints(count * per, low, natom, keyword, records, per, count)
        after = f"the {count} {records}"
    # NAMD looks for !NNB line by line from the acceptors on; what lies between is skipped unread.
    while (line := psf.line()) is not None and b"NNB" not in line.upper():
        pass
    if line is None:
        raise psf.fail(f"the file ends before the !NNB section. NAMD reads {PSF_ORDER} in this order. " + PSF_REWRITE)
    excluded = psf.count(line, "NNB")
    if excluded:
        psf.ints(excluded, 1, natom, "NNB", "excluded atoms", 1, excluded)
        psf.ints(
            natom, 0, excluded, "NNB", "exclusion pointers (one an atom)", 1, natom,
            outside=f"points past the {excluded} excluded atoms",
        )  # fmt: skip
    # The rest is optional and read in this order; NAMD skips sections it does not know (!NGRP, !MOLNT, ...).
    found = psf.scan("NUMLP", "NUMANISO", "NCRTERM")
    if found and found[0] == "NUMLP":
        numlp = psf.count(found[1], "NUMLP")
        if numlp:
            _psf_lone_pairs(psf, numlp, natom)
        found = psf.scan("NUMANISO", "NCRTERM")
    if found and found[0] == "NUMANISO":
        if not is_drude:
            raise psf.fail("it has a !NUMANISO section but its first line does not say DRUDE: NAMD stops on that")
        numaniso = psf.count(found[1], "NUMANISO")
        if numaniso:
            _psf_anisotropies(psf, numaniso, natom)
        found = psf.scan("NCRTERM")
    elif is_drude:
        raise psf.fail("its first line says DRUDE but it has no !NUMANISO section, which NAMD requires of Drude PSFs")
    if found and found[0] == "NCRTERM":
        crossterms = psf.count(found[1], "NCRTERM")
        psf.ints(8 * crossterms, 1, natom, "NCRTERM", "cross-terms", 8, crossterms)
    return natom


def psf_atom_count(path: Path) -> int:
    """The atoms of a PSF read as NAMD reads it, every section checked against its count. Raises InputFileInvalid
    (PSF_INVALID)."""
    with path.open("rb") as stream:
        return _read_psf(PsfStream(stream, path.name))


# ------------------------------------------------------------------ PDB and NAMD binary files


def pdb_atom_count(path: Path) -> int:
    """ATOM/HETATM records of a PDB (up to its first END). Raises InputFileInvalid (PDB_INVALID)."""
    count = 0
    with path.open("rb") as stream:
        for line in stream:
            if line.startswith((b"ATOM  ", b"HETATM")):
                if len(line.rstrip()) < 54:
                    raise InputFileInvalid("PDB_INVALID", f"{path.name}: an ATOM record is too short for coordinates")
                count += 1
            elif line.startswith((b"END", b"ENDMDL")) and count:
                break
    if count == 0:
        raise InputFileInvalid("PDB_INVALID", f"{path.name} has no ATOM or HETATM records: not a PDB file")
    return count


def binary_atom_count(path: Path) -> int:
    """Atoms in NAMD's binary .coor/.vel (int32 count, then 3 doubles each). Raises InputFileInvalid."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        header = stream.read(4)
    if len(header) == 4:
        (count,) = struct.unpack("<i", header)
        if count > 0 and size == 4 + 24 * count:
            return count
    raise InputFileInvalid("BINARY_COORDINATES_INVALID", f"{path.name} is not a NAMD binary coordinate/velocity file")


def check_text(path: Path) -> None:
    """Parameter and restraint files are text. Raises InputFileInvalid (NOT_TEXT)."""
    with path.open("rb") as stream:
        probe = stream.read(TEXT_PROBE_BYTES)
    if b"\0" in probe:
        raise InputFileInvalid("NOT_TEXT", f"{path.name} is binary, but this input must be a text file")


# ------------------------------------------------------------------ AMBER parm7 (NAMD's `parmfile`)

PRMTOP_REWRITE = "Write the topology again with tleap or ParmEd."
# %VERSION as NAMD's sscanf("%%VERSION VERSION_STAMP = %9s DATE = %8s %8s") must read it, or it gives up.
PRMTOP_VERSION = re.compile(rb"%VERSION\s*VERSION_STAMP\s*=\s*\S+\s*DATE\s*=\s*\S+\s+\S")
PRMTOP_VALUE_FLAGS = frozenset({  # small sections whose values size others
    "POINTERS", "SOLVENT_POINTERS", "IPOL", "CMAP_COUNT", "CHARMM_CMAP_COUNT", "CMAP_RESOLUTION",
    "CHARMM_CMAP_RESOLUTION", "CHARMM_UREY_BRADLEY_COUNT", "CHARMM_NUM_IMPROPERS", "CHARMM_NUM_IMPR_TYPES",
})  # fmt: skip
PRMTOP_REQUIRED = (  # NAMD only warns of a missing section, then builds the molecule from the empty list
    "ATOM_NAME", "CHARGE", "MASS", "ATOM_TYPE_INDEX", "NUMBER_EXCLUDED_ATOMS", "NONBONDED_PARM_INDEX",
    "RESIDUE_LABEL", "RESIDUE_POINTER", "BOND_FORCE_CONSTANT", "BOND_EQUIL_VALUE", "ANGLE_FORCE_CONSTANT",
    "ANGLE_EQUIL_VALUE", "DIHEDRAL_FORCE_CONSTANT", "DIHEDRAL_PERIODICITY", "DIHEDRAL_PHASE", "LENNARD_JONES_ACOEF",
    "LENNARD_JONES_BCOEF", "BONDS_INC_HYDROGEN", "BONDS_WITHOUT_HYDROGEN", "ANGLES_INC_HYDROGEN",
    "ANGLES_WITHOUT_HYDROGEN", "DIHEDRALS_INC_HYDROGEN", "DIHEDRALS_WITHOUT_HYDROGEN", "EXCLUDED_ATOMS_LIST",
    "AMBER_ATOM_TYPE",
)  # fmt: skip
FORTRAN_FIELD = re.compile(rb"(\d*)([A-Za-z])(\d*)(?:\.(\d*))?")
# A line of whole numbers, separated: possessive, so a damaged line fails at once instead of backtracking.
NUMBER_LINE = {
    "I": re.compile(rb"(?:\s*+[+-]?\d++)*+\s*+"),
    "F": re.compile(rb"(?:\s*+[+-]?(?:\d++\.?\d*+|\.\d++)(?:[eEdD][+-]?\d++)?+)*+\s*+"),
}


class FortranFormat:
    """A %FORMAT: `fields` (kind, width) per field of a line; kind I (integer), F (real) or A (text)."""

    def __init__(self, fields: tuple[tuple[str, int], ...], whole_line: bool = False) -> None:
        self.fields = fields
        self.whole_line = whole_line  # "(a)": the line is one text field
        kinds = set(fields)
        self.uniform = next(iter(kinds)) if len(kinds) == 1 else None  # (kind, width) of every field

    def count(self, line: bytes) -> int:
        """Fields NAMD takes from `line`: each one that starts inside it."""
        if self.whole_line:
            return 1
        if self.uniform:
            return min(len(self.fields), -(-len(line) // self.uniform[1]))
        taken, start = 0, 0
        for _kind, width in self.fields:
            if start >= len(line):
                break
            taken, start = taken + 1, start + width
        return taken

    def ints(self, line: bytes, taken: int) -> list[int]:
        """The leading integer of each field, as NAMD's stoi takes it (0 for a text field)."""
        if self.whole_line:
            return [0]
        numbers, start = [], 0
        for _kind, width in self.fields[:taken]:
            numbers.append(_leading_int(line[start : start + width]) or 0)
            start += width
        return numbers

    def bad_field(self, line: bytes, taken: int) -> bytes | None:
        """The first field NAMD's stoi/stof cannot read, if any."""
        if self.whole_line:
            return None
        if self.uniform and self.uniform[0] in NUMBER_LINE:
            # The shape of every numeric prmtop line: numbers apart, one a field, no field left blank.
            kind, width = self.uniform
            chunk = line[: taken * width]
            if b" " * width not in chunk and NUMBER_LINE[kind].fullmatch(chunk) and len(chunk.split()) == taken:
                return None
        start = 0
        for kind, width in self.fields[:taken]:
            field = line[start : start + width]
            start += width
            if (kind == "I" and not INT_START.match(field)) or (kind == "F" and not FLOAT_START.match(field)):
                return field
        return None


def _fortran_format(line: bytes) -> FortranFormat | None:
    """Parse `%FORMAT(10I8)`-style specifiers as NAMD's parse_fortran_format does; None if it cannot."""
    opening = line.find(b"(")
    closing = line.find(b")", opening + 1)
    if opening < 0 or closing < 0:
        return None
    fields: list[tuple[str, int]] = []
    for spec in filter(None, (part.strip() for part in line[opening + 1 : closing].split(b","))):
        if b"'" in spec:
            continue  # a quoted padding string: NAMD skips it, and parm7 files have none
        match = FORTRAN_FIELD.fullmatch(spec)
        if not match:
            return None
        repeat, kind, width = int(match.group(1) or 1), match.group(2).decode().upper(), match.group(3)
        kind = {"E": "F", "D": "F", "G": "F"}.get(kind, kind)
        if kind not in ("I", "F", "A"):
            return None
        if not width:
            if kind == "A" and not fields:
                return FortranFormat((), whole_line=True)
            return None
        fields.extend([(kind, int(width))] * repeat)
    return FortranFormat(tuple(fields)) if fields else None


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
                form = _fortran_format(line)
                if form is None:
                    raise fail(
                        f"line {line_no} ('{_shown(line)}') is not a Fortran format NAMD can read. " + PRMTOP_REWRITE
                    )
                continue
        if flag is None or form is None:
            continue
        taken = form.count(line)
        if taken and (bad := form.bad_field(line, taken)) is not None:
            raise fail(
                f"line {line_no}, in %FLAG {flag}, holds '{_shown(bad)}' where its %FORMAT wants a number: "
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
        ("ATOM_NAME", natom), ("CHARGE", natom), ("ATOMIC_NUMBER", natom), ("MASS", natom),
        ("ATOM_TYPE_INDEX", natom), ("NUMBER_EXCLUDED_ATOMS", natom), ("NONBONDED_PARM_INDEX", ntypes * ntypes),
        ("RESIDUE_LABEL", nres), ("RESIDUE_POINTER", nres), ("BOND_FORCE_CONSTANT", numbnd),
        ("BOND_EQUIL_VALUE", numbnd), ("ANGLE_FORCE_CONSTANT", numang), ("ANGLE_EQUIL_VALUE", numang),
        ("DIHEDRAL_FORCE_CONSTANT", nptra), ("DIHEDRAL_PERIODICITY", nptra), ("DIHEDRAL_PHASE", nptra),
        ("SCEE_SCALE_FACTOR", nptra), ("SCNB_SCALE_FACTOR", nptra), ("LENNARD_JONES_ACOEF", pairs),
        ("LENNARD_JONES_BCOEF", pairs), ("BONDS_INC_HYDROGEN", 3 * nbonh), ("BONDS_WITHOUT_HYDROGEN", 3 * nbona),
        ("ANGLES_INC_HYDROGEN", 4 * ntheth), ("ANGLES_WITHOUT_HYDROGEN", 4 * ntheta),
        ("DIHEDRALS_INC_HYDROGEN", 5 * nphih), ("DIHEDRALS_WITHOUT_HYDROGEN", 5 * nphia),
        ("EXCLUDED_ATOMS_LIST", nnb), ("HBOND_ACOEF", nphb), ("HBOND_BCOEF", nphb), ("AMBER_ATOM_TYPE", natom),
        ("TREE_CHAIN_CLASSIFICATION", natom),
    ]  # fmt: skip
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
            ("CHARMM_UREY_BRADLEY", 3 * bradley), ("CHARMM_UREY_BRADLEY_FORCE_CONSTANT", bradley_types),
            ("CHARMM_UREY_BRADLEY_EQUIL_VALUE", bradley_types), ("CHARMM_NUM_IMPROPERS", 1),
            ("CHARMM_IMPROPERS", 5 * _padded(values, "CHARMM_NUM_IMPROPERS", 1)[0]),
        ]  # fmt: skip
        (improper_types,) = _padded(values, "CHARMM_NUM_IMPR_TYPES", 1)
        yield from [
            ("CHARMM_IMPROPER_FORCE_CONSTANT", improper_types), ("CHARMM_IMPROPER_PHASE", improper_types),
            ("LENNARD_JONES_14_ACOEF", pairs), ("LENNARD_JONES_14_BCOEF", pairs),
        ]  # fmt: skip
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
                natom = _leading_int(raw)
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
                    f"'{_shown(body)}': the file is truncated or its atom count ({natom}) is wrong."
                )
            fields = [body[i : i + 12] for i in range(0, 36 * atoms, 12)]
            if not all(_is_float(field.strip()) for field in fields):
                raise fail(f"line {line_no} holds '{_shown(body)}', not coordinates in 12 columns each (6F12.7).")
    return natom


# ------------------------------------------------------------------ GROMACS (NAMD's `grocoorfile`, `grotopfile`)

GRO_LINE_LIMIT = 97  # NAMD reads .gro lines with fgets(buf, 99): 98 characters with the newline


def _is_box_line(line: bytes) -> bool:
    numbers = line.split()
    return len(numbers) in (3, 9) and all(_is_float(number) for number in numbers)


def gro_atom_count(path: Path) -> int:
    """The atom count on a .gro's second line, with that many atom lines (x y z from column 21) and the box line
    after them. Raises InputFileInvalid (GRO_INVALID)."""

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("GRO_INVALID", f"{path.name}: {message}")

    with path.open("rb") as stream:
        lines = (raw.rstrip(b"\r\n") for raw in stream)
        title, count_line = next(lines, None), next(lines, None)
        natom = _leading_int(count_line) if count_line is not None else None
        if title is None or natom is None or natom <= 0:
            raise fail("its second line must be the number of atoms: it is not a GROMACS .gro file.")
        for line_no, line in enumerate((title, count_line), start=1):
            if len(line) > GRO_LINE_LIMIT:
                raise fail(f"line {line_no} is longer than the {GRO_LINE_LIMIT} characters NAMD reads of a line.")
        for atom in range(1, natom + 1):
            line = next(lines, None)
            if line is None:
                raise fail(f"line 2 says {natom} atoms but the file ends after {atom - 1}: it is truncated.")
            coordinates = line[20:].split()[:3]
            if len(coordinates) < 3 or not all(FLOAT_START.match(value) for value in coordinates):
                if _is_box_line(line):
                    raise fail(f"line 2 says {natom} atoms but the box line follows {atom - 1}: fix the count.")
                raise fail(
                    f"line {atom + 2} is not an atom line (NAMD reads x y z from column 21 on): '{_shown(line)}'."
                )
            if len(line) > GRO_LINE_LIMIT:
                raise fail(f"line {atom + 2} is longer than the {GRO_LINE_LIMIT} characters NAMD reads of a line.")
        box = next(lines, None)
        if box is None or not _is_box_line(box):
            if box is not None and len(box[20:].split()) >= 3:
                raise fail(f"line 2 says {natom} atoms but more atom lines follow: fix the count.")
            raise fail(f"the {natom} atoms must be followed by the box line (3 or 9 numbers): the file is truncated.")
    return natom


GROTOP_DIRECTIVE = re.compile(rb"\[\s*([^\]\s]+)\s*\]")
GROTOP_REQUIRED = ("defaults", "moleculetype", "atoms", "system", "molecules")


def grotop_atom_count(path: Path) -> int:
    """The atoms a GROMACS .top's [ molecules ] add up to, from its [ moleculetype ]/[ atoms ] lists. Raises
    InputFileInvalid (GROTOP_INVALID)."""

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("GROTOP_INVALID", f"{path.name}: {message}")

    directives: set[str] = set()
    directive: str | None = None
    molecule_atoms: dict[bytes, int] = {}
    molecule: bytes | None = None
    total, listed = 0, 0
    with path.open("rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            text = raw.split(b";", 1)[0].strip()
            if not text:
                continue
            if text.startswith(b"#"):
                # NAMD's GromacsTopFile has no preprocessor: it would parse this line as data of the directive
                # it is in, and stop (or miss the force field an #include was to bring in).
                raise fail(
                    f"line {line_no} is '{_shown(text)}', but NAMD reads the topology without GROMACS's "
                    "preprocessor, so #include, #define and #ifdef are not followed. Run 'gmx grompp -pp "
                    "processed.top' and upload processed.top."
                )
            if match := GROTOP_DIRECTIVE.fullmatch(text):
                directive = match.group(1).decode("latin-1").lower()
                directives.add(directive)
                continue
            if directive is None:
                raise fail(f"line {line_no} ('{_shown(text)}') comes before any [ directive ].")
            fields = text.split()
            if directive == "moleculetype":
                if len(fields) < 2 or not INT_START.match(fields[1]):
                    raise fail(f"line {line_no} should be a molecule name and its nrexcl: '{_shown(text)}'.")
                molecule = fields[0]
                molecule_atoms.setdefault(molecule, 0)
            elif directive == "atoms":
                if molecule is None:
                    raise fail(f"line {line_no} lists an atom outside any [ moleculetype ].")
                # NAMD reads " %d %5s %d %5s %5s %d %f %f": number, type, residue, name, atom, group, charge[, mass]
                if len(fields) < 7 or not all(INT_START.match(fields[i]) for i in (0, 2, 5)):
                    raise fail(f"line {line_no} is not an [ atoms ] line NAMD can read: '{_shown(text)}'.")
                if not FLOAT_START.match(fields[6]) or (len(fields) > 7 and not FLOAT_START.match(fields[7])):
                    raise fail(f"line {line_no} is not an [ atoms ] line NAMD can read: '{_shown(text)}'.")
                molecule_atoms[molecule] += 1
            elif directive == "molecules":
                copies = _leading_int(fields[1]) if len(fields) > 1 else None
                if copies is None or copies < 0:
                    raise fail(f"line {line_no} should be a molecule name and its count: '{_shown(text)}'.")
                if fields[0] not in molecule_atoms:
                    raise fail(
                        f"[ molecules ] lists '{_shown(fields[0])}' (line {line_no}), which no [ moleculetype ] "
                        "defines."
                    )
                total += copies * molecule_atoms[fields[0]]
                listed += 1
    missing = [name for name in GROTOP_REQUIRED if name not in directives]
    if missing:
        raise fail(
            f"it has no [ {missing[0]} ] directive: a GROMACS topology for NAMD needs [ defaults ], "
            "[ moleculetype ] with its [ atoms ], [ system ] and [ molecules ]."
        )
    if not listed or not total:
        raise fail("its [ molecules ] list no atoms: name each molecule of the system and its count there.")
    return total


# ------------------------------------------------------------------ roles

STRUCTURE_ROLES = ("structure", "parmfile", "grotopfile")  # the file that defines the atoms; the rest must agree
STRUCTURE_LABELS = {
    "structure": "the structure (PSF)",
    "parmfile": "the AMBER topology (parmfile)",
    "grotopfile": "the GROMACS topology (grotopfile)",
}

ROLE_CHECKS: dict[str, Callable[[Path], int | None]] = {
    "structure": psf_atom_count,
    "parmfile": prmtop_atom_count,
    "grotopfile": grotop_atom_count,
    "coordinates": pdb_atom_count,
    "ambercoor": inpcrd_atom_count,
    "grocoorfile": gro_atom_count,
    "bincoordinates": binary_atom_count,
    "binvelocities": binary_atom_count,
    "parameters": check_text,
    "extrabondsfile": check_text,
}


def check_inputs(files: dict[str, list[Path]]) -> list[InputProblem]:
    """Every problem of a job's inputs, keyed by NAMD role (keyword, any case), atom counts compared to the
    structure's (PSF, AMBER or GROMACS topology)."""
    problems: list[InputProblem] = []
    counted: list[tuple[str, Path, int]] = []
    for role, paths in files.items():
        check = ROLE_CHECKS.get(role.lower())
        for path in paths if check else ():
            try:
                result = check(path)
            except InputFileInvalid as exc:
                problems.append(InputProblem(exc.code, str(exc), path.name))
                continue
            if isinstance(result, int):
                counted.append((role.lower(), path, result))
    reference = next((entry for role in STRUCTURE_ROLES for entry in counted if entry[0] == role), None)
    if reference is None:
        return problems
    reference_role, reference_path, reference_count = reference
    for role, path, count in counted:
        if path != reference_path and count != reference_count:
            problems.append(InputProblem(
                "ATOM_COUNT_MISMATCH",
                f"the {role} file has {count} atoms but {STRUCTURE_LABELS[reference_role]} has {reference_count}",
                path.name,
            ))  # fmt: skip
    return problems
