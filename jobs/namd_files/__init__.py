"""Checks on a job's NAMD input files before submission: each file is what its role says, read the way NAMD
reads it, and the atom counts of structure, coordinates and restart files agree.

One module a format, each following NAMD 3.0's own reader: `psf` (PSF), `amber` (parm7 and inpcrd, with
`fortran_format` for parm7's %FORMAT lines), `gromacs` (.gro and .top) and `coordinates` (PDB and NAMD's
binary files); `roles` says which check each NAMD keyword gets and compares the atom counts. A file NAMD would
stop on fails here with a sentence saying what to do; a file NAMD reads passes, even where it bends a format's
rules.

Streams the files line by line (a 300k-atom PSF is tens of MB) and keeps counts, never the records. Knows
nothing of Django or the cluster.
"""

from jobs.namd_files.amber import inpcrd_atom_count, prmtop_atom_count
from jobs.namd_files.errors import InputFileInvalid
from jobs.namd_files.gromacs import gro_atom_count, grotop_atom_count
from jobs.namd_files.psf import psf_atom_count
from jobs.namd_files.roles import ROLE_CHECKS, STRUCTURE_ROLES, InputProblem, check_inputs

__all__ = [
    "ROLE_CHECKS",
    "STRUCTURE_ROLES",
    "InputFileInvalid",
    "InputProblem",
    "check_inputs",
    "gro_atom_count",
    "grotop_atom_count",
    "inpcrd_atom_count",
    "prmtop_atom_count",
    "psf_atom_count",
]
