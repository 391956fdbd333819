"""Reading a NAMD config as NAMD does: through a real Tcl 8.6 interpreter, bounded.

NAMD evaluates its config with Tcl: `set`, `$x`, `[expr ...]`, `if`, `proc`, `source` and `exec` are
plain Tcl, and any command Tcl does not know is a keyword setting. `namd_reader.tcl` does the same in
a safe child interpreter of `tclsh8.6` and records, instead of running, what only the cluster can
do. It runs as a separate process under CPU, memory and wall-clock limits, because a config is a
program (it may loop or grow a string without end) and a member's files may be `source`d: a
runaway config costs one short-lived process, never the web or worker process.

`read_config` returns a `ConfigReading`: the keyword settings with their file and line, NAMD's
commands (`run`, `minimize`, `cv`, ...), the cluster actions (`exec`, `open`, `file delete`, ...),
the files sourced and the Tcl errors. It knows nothing of Django; what the settings mean is
`namd_config`'s business.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from templates_app.namd_keywords import COMMANDS_AS_REGISTERED

SCRIPT = Path(__file__).with_name("namd_reader.tcl")
TCLSH_NAMES = ("tclsh8.6", "tclsh")
CLUSTER_VALUE = "\x01cluster\x01"  # what `exec` and friends return: a value only the cluster will know
MAX_COMMANDS = 500_000  # Tcl commands one reading may run
MAX_TCL_SECONDS = 2  # Tcl's own time limit (checked between commands)
MAX_CPU_SECONDS = 4  # the process's CPU limit (a loop with no commands in its body)
MAX_WALL_SECONDS = 8.0
MAX_MEMORY_BYTES = 512 * 1024**2
MAX_RECORDS = 20_000


class ReaderUnavailable(RuntimeError):
    """Tcl 8.6 (`tclsh8.6`) is not installed where the portal runs."""


@dataclass(frozen=True)
class Setting:
    name: str  # as the config spells it
    value: str | None  # None: only the cluster will know it
    file: str
    line: int
    after_cluster_step: bool = False  # the reading depended on the cluster before this line
    order: int = 0  # position among everything the config did, in evaluation order

    @property
    def keyword(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    file: str
    line: int
    order: int = 0


@dataclass(frozen=True)
class ClusterAction:
    what: str  # exec, open, file, python, cd, ...
    words: tuple[str, ...]
    file: str
    line: int

    @property
    def text(self) -> str:
        return " ".join((self.what, *self.words))


@dataclass(frozen=True)
class Sourced:
    path: str  # in the job folder, normalized; as written when outside it
    status: str  # read | missing | cluster | outside | loop
    file: str
    line: int


@dataclass(frozen=True)
class TclFailure:
    code: str
    message: str
    file: str
    line: int
    explained_by_cluster: bool  # a value only the cluster has (a file made by exec, $env(...))


@dataclass
class ConfigReading:
    config_path: str
    settings: list[Setting] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    actions: list[ClusterAction] = field(default_factory=list)
    sources: list[Sourced] = field(default_factory=list)
    failures: list[TclFailure] = field(default_factory=list)
    limit: str = ""  # commands | time | records | size | cpu | memory, when the reading was cut short
    depends_on_cluster: bool = False  # something only the cluster has was needed (exec, $env, a file it makes)
    made_on_cluster: set[str] = field(default_factory=set)  # files an `exec` writes, in the job folder


@lru_cache(maxsize=1)
def tclsh() -> str:
    for name in TCLSH_NAMES:
        if found := shutil.which(name):
            return found
    raise ReaderUnavailable("Tcl 8.6 is not installed (Debian package tcl8.6): NAMD configs cannot be read")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode() if text else "="


def _text(field: str) -> str:
    return "" if field in ("", "=", "-") else base64.b64decode(field).decode(errors="replace")


def _request(text: str, config_path: str, files: Mapping[str, Path | None]) -> bytes:
    lines = [f"config {_b64(config_path)}"]
    lines += [f"file {_b64(path)} {_b64(str(local) if local else '')}" for path, local in files.items()]
    lines += [f"command {name}" for name in COMMANDS_AS_REGISTERED]
    lines.append(f"limits {MAX_COMMANDS} {MAX_TCL_SECONDS} {MAX_RECORDS}")
    lines.append("text")
    return ("\n".join(lines) + "\n" + text).encode()


def _limits() -> list[str]:
    return ["prlimit", f"--cpu={MAX_CPU_SECONDS}", f"--as={MAX_MEMORY_BYTES}", "--"]


def read_config(
    text: str, *, config_path: str = "job.namd", files: Mapping[str, Path | None] | None = None
) -> ConfigReading:
    """Evaluate a config as NAMD would, without running anything of the cluster's.

    `config_path` is where the config sits in the job folder (NAMD runs in that folder); `files`
    maps the job's files (paths in the job folder) to where the portal holds them, or to None for a
    file the job has that the portal does not hold (it is then the cluster's to read).
    """
    argv = [*_limits(), tclsh(), str(SCRIPT)]
    reading = ConfigReading(config_path=config_path)
    try:
        finished = subprocess.run(
            argv,
            input=_request(text, config_path, files or {}),
            capture_output=True,
            timeout=MAX_WALL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        _parse(reading, exc.stdout or b"")
        reading.limit = reading.limit or "time"
        return reading
    _parse(reading, finished.stdout)
    if finished.returncode != 0 and not reading.limit:
        stderr = finished.stderr.decode(errors="replace")
        reading.limit = "memory" if "alloc" in stderr or finished.returncode in (-6, 134) else "cpu"
    return reading


def _parse(reading: ConfigReading, output: bytes) -> None:
    for order, raw in enumerate(output.decode(errors="replace").splitlines()):
        kind, *fields = raw.split(" ")
        if kind == "L":
            reading.limit = fields[0]
            continue
        if len(fields) < 2:
            continue
        if kind == "D":
            reading.depends_on_cluster = True
            continue
        file, line, rest = _text(fields[0]), int(fields[1]), fields[2:]
        if kind == "K" and len(rest) == 3:
            value = _text(rest[2])
            reading.settings.append(
                Setting(_text(rest[1]), None if CLUSTER_VALUE in value else value, file, line, rest[0] == "1", order)
            )
        elif kind == "M" and rest:
            reading.made_on_cluster.add(_text(rest[0]))
        elif kind == "C" and rest:
            reading.commands.append(Command(_text(rest[0]), tuple(_text(arg) for arg in rest[1:]), file, line, order))
        elif kind == "X" and rest:
            words = tuple("(a value only the cluster knows)" if CLUSTER_VALUE in w else w for w in map(_text, rest[1:]))
            reading.actions.append(ClusterAction(_text(rest[0]), words, file, line))
        elif kind == "S" and len(rest) == 2:
            reading.sources.append(Sourced(_text(rest[0]), rest[1], file, line))
        elif kind == "E" and len(rest) == 2:
            reading.failures.append(TclFailure(_text(rest[0]), _text(rest[1]), file, line, False))
        elif kind == "Q" and rest:
            reading.failures.append(TclFailure("TCL_NEEDS_CLUSTER", _text(rest[0]), file, line, True))
