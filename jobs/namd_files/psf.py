"""PSF files (NAMD's `structure`), read as NAMD 3.0's `Molecule::read_psf_file` (src/Molecule.C) reads them,
with its primitives NAMD_read_line and NAMD_read_int (src/strlib.C): every section in NAMD's order, each
checked against its count and its atom numbers against the atoms.

Knows nothing of other formats, of Django or of the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jobs.namd_files.errors import InputFileInvalid, excerpt
from jobs.namd_files.sscanf import FLOAT_START, INT_START, leading_int

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
        value = leading_int(line)
        if value is None or value < 0:
            raise self.fail(f"line {self.line_no} has no count before !{keyword}: '{excerpt(line)}'")
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
                        f"!{keyword} says {count} {records} but line {self.line_no} ('{excerpt(raw)}') comes after "
                        f"{(done + bad) // per} of them: fix the count or the list. " + PSF_REWRITE
                    )
                raise self.fail(
                    f"line {self.line_no} of the {records} (!{keyword}) holds '{excerpt(taken[bad])}', which NAMD "
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
                    f"line {self.line_no} ('{excerpt(line)}') is one atom more than !NATOM says: fix the count or "
                    "the atom list. " + PSF_REWRITE
                )
            if all(token.isdigit() for token in fields):
                raise self.fail(
                    f"line {self.line_no} holds more numbers after {after}, where NAMD expects !{keyword}: the count "
                    "before them is too small or the list too long. " + PSF_REWRITE
                )
            raise self.fail(
                f"line {self.line_no} should start the !{keyword} section after {after} but is '{excerpt(line)}': "
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
            len(fields) >= 8
            and INT_START.match(fields[0])
            and FLOAT_START.match(fields[6])
            and FLOAT_START.match(fields[7])
        )
        if readable and is_drude:
            readable = len(fields) >= 11 and INT_START.match(fields[8]) and FLOAT_START.match(fields[9])
            readable = readable and FLOAT_START.match(fields[10])
        if not readable:
            if b"!" in text:
                raise psf.fail(
                    f"!NATOM says {natom} atoms but line {psf.line_no} ('{excerpt(text)}') comes after {number}: "
                    "fix the count or the atom list. " + PSF_REWRITE
                )
            columns = "11 columns (Drude)" if is_drude else "8 columns"
            raise psf.fail(
                f"line {psf.line_no} is not an atom line: NAMD reads {columns}: number, segment, residue number, "
                f"residue name, atom name, atom type, charge, mass. It is '{excerpt(text)}'."
            )
        if INT_START.match(fields[5]):
            raise psf.fail(
                f"atom {number + 1} has the numeric type '{excerpt(fields[5])}': this is a CHARMM-format PSF (or one "
                "with an empty segment name), and NAMD needs the X-PLOR format with type names. Write it with "
                "psfgen (VMD), CHARMM-GUI, or CHARMM's 'write psf card xplor'."
            )
        if leading_int(fields[0]) != number + 1:
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
        hosts = leading_int(fields[0]) if fields else None
        index = leading_int(fields[1]) if len(fields) > 1 else None
        if (
            hosts is None
            or hosts not in (2, 3)
            or len(fields) < 6
            or index != next_index
            or fields[2] != b"F"
            or not all(FLOAT_START.match(field) for field in fields[3:6])
        ):
            raise psf.fail(
                f"line {psf.line_no} is not the lone pair NAMD expects ('hosts {next_index} F distance angle "
                f"dihedral', with 2 or 3 hosts): '{excerpt(text)}'. " + PSF_REWRITE
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
            raise psf.fail(f"line {psf.line_no} of !NUMANISO should hold three constants: '{excerpt(text)}'")
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
        shown = "the end of the file" if line is None else f"'{excerpt(line)}'"
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
            natom,
            0,
            excluded,
            "NNB",
            "exclusion pointers (one an atom)",
            1,
            natom,
            outside=f"points past the {excluded} excluded atoms",
        )
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
