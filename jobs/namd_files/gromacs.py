"""GROMACS files: .gro coordinates (NAMD's `grocoorfile`), read as NAMD 3.0's `PDB` constructor (src/PDB.C)
reads them, and .top topologies (NAMD's `grotopfile`), read as its `GromacsTopFile` (src/GromacsTopFile.C)
reads them, without GROMACS's preprocessor.

Knows nothing of other formats, of Django or of the cluster.
"""

from __future__ import annotations

import re
from pathlib import Path

from jobs.namd_files.errors import InputFileInvalid, excerpt
from jobs.namd_files.sscanf import FLOAT_START, INT_START, is_float, leading_int

GRO_LINE_LIMIT = 97  # NAMD reads .gro lines with fgets(buf, 99): 98 characters with the newline


def _is_box_line(line: bytes) -> bool:
    numbers = line.split()
    return len(numbers) in (3, 9) and all(is_float(number) for number in numbers)


def gro_atom_count(path: Path) -> int:
    """The atom count on a .gro's second line, with that many atom lines (x y z from column 21) and the box line
    after them. Raises InputFileInvalid (GRO_INVALID)."""

    def fail(message: str) -> InputFileInvalid:
        return InputFileInvalid("GRO_INVALID", f"{path.name}: {message}")

    with path.open("rb") as stream:
        lines = (raw.rstrip(b"\r\n") for raw in stream)
        title, count_line = next(lines, None), next(lines, None)
        natom = leading_int(count_line) if count_line is not None else None
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
                    f"line {atom + 2} is not an atom line (NAMD reads x y z from column 21 on): '{excerpt(line)}'."
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
                    f"line {line_no} is '{excerpt(text)}', but NAMD reads the topology without GROMACS's "
                    "preprocessor, so #include, #define and #ifdef are not followed. Run 'gmx grompp -pp "
                    "processed.top' and upload processed.top."
                )
            if match := GROTOP_DIRECTIVE.fullmatch(text):
                directive = match.group(1).decode("latin-1").lower()
                directives.add(directive)
                continue
            if directive is None:
                raise fail(f"line {line_no} ('{excerpt(text)}') comes before any [ directive ].")
            fields = text.split()
            if directive == "moleculetype":
                if len(fields) < 2 or not INT_START.match(fields[1]):
                    raise fail(f"line {line_no} should be a molecule name and its nrexcl: '{excerpt(text)}'.")
                molecule = fields[0]
                molecule_atoms.setdefault(molecule, 0)
            elif directive == "atoms":
                if molecule is None:
                    raise fail(f"line {line_no} lists an atom outside any [ moleculetype ].")
                # NAMD reads " %d %5s %d %5s %5s %d %f %f": number, type, residue, name, atom, group, charge[, mass]
                if len(fields) < 7 or not all(INT_START.match(fields[i]) for i in (0, 2, 5)):
                    raise fail(f"line {line_no} is not an [ atoms ] line NAMD can read: '{excerpt(text)}'.")
                if not FLOAT_START.match(fields[6]) or (len(fields) > 7 and not FLOAT_START.match(fields[7])):
                    raise fail(f"line {line_no} is not an [ atoms ] line NAMD can read: '{excerpt(text)}'.")
                molecule_atoms[molecule] += 1
            elif directive == "molecules":
                copies = leading_int(fields[1]) if len(fields) > 1 else None
                if copies is None or copies < 0:
                    raise fail(f"line {line_no} should be a molecule name and its count: '{excerpt(text)}'.")
                if fields[0] not in molecule_atoms:
                    raise fail(
                        f"[ molecules ] lists '{excerpt(fields[0])}' (line {line_no}), which no [ moleculetype ] "
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
