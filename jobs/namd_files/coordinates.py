"""NAMD's own coordinate formats: PDB (`coordinates`) and the binary .coor/.vel it writes (`bincoordinates`,
`binvelocities`), each counted in atoms.

Knows nothing of other formats, of Django or of the cluster.
"""

from __future__ import annotations

import struct
from pathlib import Path

from jobs.namd_files.errors import InputFileInvalid


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
