"""The NAMD builds a cluster offers: parsed from `module -t avail namd` and from binaries on PATH.

Pure parsing plus the argvs to run; knows nothing of SSH or Django. Lmod and Environment Modules
print `avail` to stderr, so callers pass stdout and stderr together.
"""

from __future__ import annotations

import re

MODULE_NAME_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.+-]*namd[A-Za-z0-9_.+-]*(?:/[A-Za-z0-9_.+-]+)*)(?:\(.*\))?$", re.I)
NAMD_BINARIES = ("namd2", "namd3", "charmrun")


def module_avail_argv() -> list[str]:
    return ["module", "-t", "avail", "namd"]


def binaries_argv() -> list[str]:
    return ["command", "-v", *NAMD_BINARIES]


def parse_module_avail(output: str) -> list[str]:
    """Module names like 'namd/3.0-cuda' from terse `module avail` output (directory headers skipped)."""
    builds = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.endswith(":"):
            continue
        match = MODULE_NAME_RE.fullmatch(line)
        if match and match.group("name") not in builds:
            builds.append(match.group("name"))
    return builds


def parse_binaries(output: str) -> list[str]:
    """Absolute paths of NAMD binaries `command -v` found."""
    return [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith("/") and line.strip().rsplit("/", 1)[-1] in NAMD_BINARIES
    ]
