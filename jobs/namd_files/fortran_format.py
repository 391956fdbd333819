"""Fortran %FORMAT specifiers, parsed as NAMD's parse_fortran_format (src/ReadAmberParm.C) parses them, and the
fields of a line read through one as NAMD's stoi/stof read them.

Knows nothing of AMBER's sections, of Django or of the cluster.
"""

from __future__ import annotations

import re

from jobs.namd_files.sscanf import FLOAT_START, INT_START, leading_int

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
            numbers.append(leading_int(line[start : start + width]) or 0)
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


def parse_fortran_format(line: bytes) -> FortranFormat | None:
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
