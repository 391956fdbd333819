"""The NAMD config checker: what a config means to NAMD, and what is wrong with it, line by line.

A config is first evaluated through Tcl (`namd_reader`, as NAMD does), then its keyword settings are
checked against NAMD's own keyword table (`namd_keywords`): unknown names (with the nearest ones),
values of the wrong kind or range, keywords set twice where NAMD refuses it, keywords NAMD ignores
because their switch is off, the required ones (structure and coordinates or their AMBER and GROMACS
equivalents, exclude, cutoff, outputName, a temperature), `PME on` without a cell, nothing to run,
`firsttimestep` against a restart's `.xsc`, and the files it reads: inside the job folder and, for a
job, among its files. Whatever only the cluster can know (a file made by `exec`, `$env(...)`, a proc
of a file the portal does not hold) turns the checks that depend on it into warnings.

Errors block a template or a job; warnings are shown. Every problem names its file and line.
Pure: no Django, no SSH; the only I/O is the reader's Tcl process and reading an `.xsc` it is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from templates_app import namd_keywords
from templates_app.namd_reader import ClusterAction, Command, ConfigReading, Setting, read_config

ERROR, WARNING = "error", "warning"
TRUE_WORDS = frozenset({"on", "yes", "true", "1"})
FALSE_WORDS = frozenset({"off", "no", "false", "0"})
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
INT_RE, FLOAT_RE = re.compile(r"^[-+]?\d+$"), re.compile(f"^{NUMBER}$")
VECTOR_RE = re.compile(rf"^\(?\s*{NUMBER}(\s*,\s*|\s+){NUMBER}(\s*,\s*|\s+){NUMBER}\s*\)?$")
EXCLUDE_VALUES = frozenset({"none", "1-2", "1-3", "1-4", "scaled1-4"})
RUN_COMMANDS = frozenset({"run", "minimize"})
TYPO = 0.85  # similarity to a keyword above which an unknown name is read as a misspelling of it
RESTART_INPUTS = ("bincoordinates", "binvelocities", "extendedsystem")
# commands that read a file NAMD names in their arguments: (command, first argument) -> argument index
FILE_COMMANDS = {("cv", "configfile"): 1, ("cv", "load"): 1, ("colvars", "configfile"): 1}
LIMIT_WORDS = {
    "commands": "it ran more Tcl commands than a config may",
    "time": "it ran longer than a config may",
    "records": "it set more keywords than a config may",
    "size": "a file it sources is too large",
    "cpu": "it used more CPU time than a config may",
    "memory": "it used more memory than a config may",
}


@dataclass(frozen=True)
class ConfigProblem:
    code: str
    message: str
    line: int | None = None  # 1-based, None for the config as a whole
    severity: str = ERROR
    file: str = ""  # the file in the job folder, "" for the config itself

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        where = f"{self.file + ' ' if self.file else ''}line {self.line}: " if self.line else ""
        return f"{where}{self.message}"


@dataclass(frozen=True)
class FileRead:
    path: str  # in the job folder, normalized
    keyword: str  # the keyword or command that reads it, as written
    file: str
    line: int
    made_on_cluster: bool = False  # written by an `exec` before it is read


@dataclass
class ConfigCheck:
    """A config as NAMD will read it: its problems, the files it reads, what it runs on the cluster."""

    reading: ConfigReading
    problems: list[ConfigProblem] = field(default_factory=list)
    files_read: list[FileRead] = field(default_factory=list)
    output_dirs: list[str] = field(default_factory=list)  # folders the config writes into, in the job folder

    @property
    def errors(self) -> list[ConfigProblem]:
        return [problem for problem in self.problems if problem.is_error]

    @property
    def warnings(self) -> list[ConfigProblem]:
        return [problem for problem in self.problems if not problem.is_error]

    @property
    def cluster_actions(self) -> list[ClusterAction]:
        return self.reading.actions

    def value(self, keyword: str) -> str | None:
        """The last value a keyword was given, None when unset or known only on the cluster."""
        found = [s for s in self.reading.settings if s.keyword == keyword.lower()]
        return found[-1].value if found else None


def job_path(config_path: str, path: str) -> str | None:
    """`path` as NAMD opens it from the config's folder, normalized in the job folder; None outside it."""
    if path.startswith(("/", "~")) or "\x00" in path:
        return None
    parts: list[str] = []
    for part in PurePosixPath(config_path).parent.joinpath(path).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts) or None


class _Checker:
    def __init__(
        self,
        reading: ConfigReading,
        files: Mapping[str, Path | None] | None,
        config_only: bool,
        known_steps: Mapping[str, int] | None = None,
    ):
        self.reading, self.files, self.config_only = reading, files or {}, config_only
        self.known_steps = known_steps or {}
        self.check = ConfigCheck(reading=reading)
        self.depends_on_cluster = reading.depends_on_cluster
        first_run = min((c for c in reading.commands if c.name.lower() in RUN_COMMANDS), default=None, key=_order)
        self.startup = [s for s in reading.settings if first_run is None or _order(s) < _order(first_run)]
        self.last: dict[str, Setting] = {}
        for setting in self.startup:
            self.last[setting.keyword] = setting

    def problem(self, code: str, message: str, where: Setting | None = None, *, warning: bool = False) -> None:
        self.check.problems.append(
            ConfigProblem(
                code,
                message,
                where.line if where else None,
                WARNING if warning else ERROR,
                where.file if where and where.file != self.reading.config_path else "",
            )
        )

    def is_on(self, keyword: str) -> bool:
        setting = self.last.get(keyword.lower())
        return setting is not None and (setting.value or "").strip().lower() in TRUE_WORDS

    def is_off(self, keyword: str) -> bool:
        setting = self.last.get(keyword.lower())
        return setting is not None and (setting.value or "").strip().lower() in FALSE_WORDS

    def switched_off(self, known: namd_keywords.Keyword) -> bool:
        """Whether a keyword's parent is an on/off switch that is not on (feature switches are off by default)."""
        parent = namd_keywords.keyword(known.parent) if known.parent else None
        return parent is not None and parent.kind == "bool" and not self.is_on(parent.name)

    def run(self) -> ConfigCheck:
        self.tcl()
        seen: dict[str, Setting] = {}
        for setting in self.reading.settings:
            self.setting(setting, seen, startup=setting in self.startup)
        self.required()
        self.files_read()
        self.check.problems.sort(key=lambda p: (p.file != "", p.file, p.line is None, p.line or 0))
        return self.check

    def tcl(self) -> None:
        for failure in self.reading.failures:
            where = Setting("", None, failure.file, failure.line)
            if failure.explained_by_cluster:
                self.problem("NAMD_NEEDS_CLUSTER", f"only the cluster can tell: {failure.message}", where, warning=True)
            else:
                self.problem("NAMD_TCL_ERROR", f"Tcl error: {failure.message}", where)
        if self.reading.limit:
            words = LIMIT_WORDS.get(self.reading.limit, self.reading.limit)
            self.problem("NAMD_CONFIG_TOO_COSTLY", f"the config could not be read to its end: {words}")
        for source in self.reading.sources:
            where = Setting("source", None, source.file, source.line)
            if source.status == "outside":
                self.problem("NAMD_PATH_OUTSIDE_JOB", f"'source {source.path}' reads outside the job's folder", where)
            elif source.status == "loop":
                self.problem("NAMD_TCL_ERROR", f"'{source.path}' sources itself", where)

    def setting(self, setting: Setting, seen: dict[str, Setting], *, startup: bool) -> None:
        known = namd_keywords.keyword(setting.name)
        if known is None:
            hint = namd_keywords.suggestions(setting.name)
            message = f"'{setting.name}' is not a NAMD keyword" + (f"; did you mean {', '.join(hint)}?" if hint else "")
            # after something only the cluster has, an unknown name may be a proc it defines (runFEP),
            # unless it is a near-miss of a keyword (a typo is a typo wherever it is)
            maybe_proc = setting.after_cluster_step and not namd_keywords.suggestions(setting.name, cutoff=TYPO)
            if maybe_proc:
                message += " (it may be a Tcl proc of a file only the cluster has)"
            self.problem("NAMD_UNKNOWN_KEYWORD", message, setting, warning=maybe_proc)
            return
        if known.parent and self.is_off(known.parent):
            parent = getattr(namd_keywords.keyword(known.parent), "name", known.parent)
            message = f"NAMD ignores '{setting.name}' because '{parent}' is off"
            self.problem("NAMD_IGNORED_KEYWORD", message, setting, warning=True)
            return
        if not startup and setting.keyword not in namd_keywords.SCRIPT_SETTABLE:
            self.problem(
                "NAMD_NOT_SETTABLE_IN_SCRIPT",
                f"'{setting.name}' cannot change after the first run or minimize "
                f"(NAMD stops: Setting parameter {setting.name} from script failed); set it before",
                setting,
            )
            return
        if startup and setting.keyword in seen and not known.multiple and namd_keywords.DUPLICATE_IS_ERROR:
            self.problem(
                "NAMD_DUPLICATE_KEYWORD",
                f"'{setting.name}' is set twice (first on line {seen[setting.keyword].line}); NAMD allows it once",
                setting,
            )
        seen.setdefault(setting.keyword, setting)
        if setting.value is not None:
            self.value(setting, known)

    def value(self, setting: Setting, known: namd_keywords.Keyword) -> None:
        value = setting.value.strip() if setting.value else ""

        def bad(code: str, expected: str) -> None:
            shown = value if len(value) <= 40 else value[:40] + "…"
            self.problem(code, f"'{setting.name}' takes {expected}, not '{shown}'", setting)

        if not value and known.kind != "anything":
            self.problem("NAMD_VALUE_MISSING", f"'{setting.name}' needs a value", setting)
        elif known.kind == "int" and not INT_RE.fullmatch(value):
            bad("NAMD_BAD_NUMBER", "a whole number")
        elif known.kind == "float" and not FLOAT_RE.fullmatch(value):
            bad("NAMD_BAD_NUMBER", "a number")
        elif known.kind == "bool" and value.lower() not in TRUE_WORDS | FALSE_WORDS:
            bad("NAMD_BAD_BOOLEAN", "on or off")
        elif known.kind == "vector" and not VECTOR_RE.fullmatch(value):
            bad("NAMD_BAD_VECTOR", "three numbers")
        elif known.kind in ("int", "float") and known.range and _out_of_range(float(value), known.range):
            bad("NAMD_VALUE_OUT_OF_RANGE", "a positive number" if known.range == "positive" else "a number ≥ 0")
        elif setting.keyword == "exclude" and value.lower() not in EXCLUDE_VALUES:
            bad("NAMD_BAD_VALUE", "one of " + ", ".join(sorted(EXCLUDE_VALUES)))

    def soft(self) -> bool:
        """Whether a missing piece could come from something only the cluster has."""
        return self.depends_on_cluster

    def required(self) -> None:
        amber, gromacs = self.is_on("amber"), self.is_on("gromacs")
        needs = [("structure", not (amber and "parmfile" in self.last) and not (gromacs and "grotopfile" in self.last))]
        needs.append(("coordinates", "ambercoor" not in self.last and "grocoorfile" not in self.last))
        needs += [(keyword, True) for keyword in ("outputname", "exclude", "cutoff")]
        for keyword, needed in needs:
            if needed and keyword not in self.last:
                spelled = namd_keywords.KEYWORDS[keyword].name
                self.problem("NAMD_MISSING_KEYWORD", f"the config needs '{spelled}'", warning=self.soft())
        if "parameters" not in self.last and not amber and not gromacs:
            self.problem("NAMD_MISSING_KEYWORD", "the config needs at least one 'parameters' file", warning=self.soft())
        velocities = ("temperature", "velocities", "binvelocities")
        if not any(keyword in self.last for keyword in velocities):
            self.problem(
                "NAMD_MISSING_KEYWORD",
                "the config needs 'temperature', 'velocities' or 'binVelocities'",
                warning=self.soft(),
            )
        if "temperature" in self.last and ("binvelocities" in self.last or "velocities" in self.last):
            self.problem(
                "NAMD_CONFLICT", "'temperature' and initial velocities exclude each other", self.last["temperature"]
            )
        has_cell = all(f"cellbasisvector{i}" in self.last for i in (1, 2, 3))
        if self.is_on("pme") and not has_cell and "extendedsystem" not in self.last:
            self.problem(
                "NAMD_PME_NEEDS_CELL",
                "'PME on' needs cellBasisVector1-3 or an extendedSystem",
                self.last["pme"],
                warning=self.soft(),
            )
        runs = [c for c in self.reading.commands if c.name.lower() in RUN_COMMANDS]
        for command in runs:
            steps = command.args[-1] if command.args else ""
            if not INT_RE.fullmatch(steps) or int(steps) < 0:
                where = Setting(command.name, None, command.file, command.line)
                self.problem("NAMD_BAD_NUMBER", f"'{command.name}' takes a number of steps, not '{steps}'", where)
        if not runs and "numsteps" not in self.last:
            self.problem("NAMD_NOTHING_TO_RUN", "the config has no 'minimize' or 'run'", warning=self.soft())
        self.first_step()

    def first_step(self) -> None:
        xsc = self.last.get("extendedsystem")
        if xsc is None or xsc.value is None or "bincoordinates" not in self.last:
            return
        path = job_path(self.reading.config_path, xsc.value)
        local = self.files.get(path) if path else None
        if path in self.known_steps:
            step = self.known_steps[path]
        else:
            step = extended_system_file_facts(local).get("step") if local else None
        first = self.last.get("firsttimestep")
        given = int(first.value) if first and first.value and INT_RE.fullmatch(first.value) else 0
        if step is not None and step != given:
            self.problem(
                "NAMD_FIRST_STEP_MISMATCH",
                f"the restart '{xsc.value}' ends at step {step} but 'firsttimestep' is {given}",
                first or xsc,
                warning=True,
            )

    def files_read(self) -> None:
        made = self.reading.made_on_cluster
        reads: list[tuple[str, str, Setting]] = []
        for setting in self.reading.settings:
            known = namd_keywords.keyword(setting.name)
            if known is None or setting.value is None or (known.parent and self.is_off(known.parent)):
                continue
            value = setting.value.strip()
            if known.kind == "file" and not known.is_output and value and not re.search(r"\s", value):
                if self.switched_off(known):  # NAMD reads the file only when its switch is on
                    continue
                reads.append((value, setting.name, setting))
            elif known.is_output and value:
                self.output(setting, value)
        for command in self.reading.commands:
            index = FILE_COMMANDS.get((command.name.lower(), command.args[0].lower() if command.args else ""))
            if index is not None and len(command.args) > index:
                reads.append((command.args[index], f"{command.name} {command.args[0]}", _at(command)))
        for source in self.reading.sources:
            if source.status in ("read", "missing", "cluster"):
                reads.append((source.path, "source", Setting("source", None, source.file, source.line)))
        seen: set[str] = set()
        for written, keyword, where in reads:
            path = written if keyword == "source" else job_path(self.reading.config_path, written)
            if path is None:
                self.problem("NAMD_PATH_OUTSIDE_JOB", f"'{keyword} {written}' reads outside the job's folder", where)
                continue
            if path in seen:
                continue
            seen.add(path)
            on_cluster = path in made
            self.check.files_read.append(FileRead(path, keyword, where.file, where.line, on_cluster))
            if not self.config_only and not on_cluster and path not in self.files:
                message = f"'{keyword} {written}' reads {path}, which is not among the job's files"
                self.problem("NAMD_INPUT_MISSING", message, where)

    def output(self, setting: Setting, value: str) -> None:
        path = job_path(self.reading.config_path, value)
        if path is None:
            self.problem("NAMD_PATH_OUTSIDE_JOB", f"'{setting.name} {value}' writes outside the job's folder", setting)
            return
        folder = str(PurePosixPath(path).parent)
        if folder != "." and folder not in self.check.output_dirs:
            self.check.output_dirs.append(folder)


def _order(item: Setting | Command) -> int:
    return item.order


def _at(command: Command) -> Setting:
    return Setting(command.name, None, command.file, command.line)


def _out_of_range(number: float, kind: str) -> bool:
    return number <= 0 if kind == "positive" else number < 0


XSC_PROBE_BYTES = 256 * 1024  # an extended-system file's last data line is within its last bytes


def last_extended_system_fields(text: str) -> list[str]:
    """The words of an extended-system file's last data line (`step a_x a_y a_z ... o_x o_y o_z ...`), [] if none."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return lines[-1].split() if lines else []


def extended_system_facts(text: str) -> dict[str, Any]:
    """{"step": N, "cell": [|a|, |b|, |c|]} from the last data line of a NAMD extended-system file (.xsc/.xst:
    `step a_x a_y a_z b_x b_y b_z c_x c_y c_z ...`); {} when it has none, {"step": N} without a cell."""
    fields = last_extended_system_fields(text)
    if not fields:
        return {}
    try:
        step = int(fields[0])
        numbers = [float(field) for field in fields[1:10]]
    except (ValueError, IndexError):
        return {}
    if len(numbers) < 9:
        return {"step": step}
    return {"step": step, "cell": [round(math.dist(numbers[i : i + 3], (0.0, 0.0, 0.0)), 4) for i in (0, 3, 6)]}


def extended_system_file_facts(path: Path) -> dict[str, Any]:
    """`extended_system_facts` of a file on the portal's disk ({} when it cannot be read)."""
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - XSC_PROBE_BYTES))
            return extended_system_facts(stream.read().decode(errors="replace"))
    except OSError:
        return {}


def check_config(
    text: str,
    *,
    config_path: str = "job.namd",
    files: Mapping[str, Path | None] | None = None,
    config_only: bool = False,
    known_steps: Mapping[str, int] | None = None,
) -> ConfigCheck:
    """Every problem of a config, as NAMD would read it in the job folder with these files.

    With `config_only` (a template body, or `check_namd_config --config-only`) the files it reads
    are listed, not required. `known_steps` gives the step of extended-system files the portal no
    longer holds (read when they were uploaded), for the `firsttimestep` check.
    """
    if files is None and config_only:
        reading = _read_alone(text, config_path)
    else:
        reading = read_config(text, config_path=config_path, files=files)
    return _Checker(reading, files, config_only, known_steps).run()


@lru_cache(maxsize=256)
def _read_alone(text: str, config_path: str) -> ConfigReading:
    return read_config(text, config_path=config_path)


def check_namd_config(text: str, *, config_path: str = "job.namd") -> list[ConfigProblem]:
    """The problems of a config read alone (as a template body), errors and warnings, in line order."""
    return check_config(text, config_path=config_path, config_only=True).problems
