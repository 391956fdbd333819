#!/usr/bin/env python3
"""Stand-in NAMD engine: test equipment for the local SLURM cluster, not a simulator.

Real NAMD cannot be installed on the test machines, so the cluster's `namd2` and `namd3` wrappers run
this script. It behaves like NAMD wherever the portal can see it: the command line, the checks of the
config file and its input files, the log on stdout (banner, `Info:`, `Warning:`, `TCL:`, `ETITLE:`/`ENERGY:`,
`TIMING:`, `PERFORMANCE:` or `Info: Benchmark time:`, `PRESSURE:`/`GPRESSURE:`, the minimizer's `MINIMIZER ...`
and `LINE MINIMIZER ...`, `WRITING ...`, `FATAL ERROR:`), the exit status and the output files (.coor, .vel,
.xsc, .dcd, .xst and restart files, where the config names them). It computes no dynamics: energies are a cheap
closed-form function of the step and the seed, so the same inputs give the same ENERGY lines and the engine needs
almost no CPU.

Usage, as NAMD:  namd3 +p2 [+devices 0] [--keyword value] job.namd > job.log
  Charm++ options (`+x`, `++x`) are accepted and ignored, except that `+pN` sets the processor count
  shown in the log. Like NAMD, the engine changes into the config file's directory, so relative paths
  in the config (and in files it sources) are relative to that directory.
Builds: run under a program name starting with `namd2` (a symlink to this file), it is NAMD 2.14, which
  knows no GPU-resident keywords and prints no PERFORMANCE: lines; under any other name NAMD 3.0.1.
  With `+devices` it is the CUDA build of that version; NAMD 3 then also honours `CUDASOAintegrate on`.
Speed: NAMD_STANDIN_STEPS_PER_SECOND (default 500; 0 or inf: as fast as possible). The engine sleeps
  to keep that pace, so a test can make a job last seconds or minutes.
Exit status: 0 on success, 1 after a FATAL ERROR; SIGTERM and SIGINT end it like a killed program
  (the log is line-buffered, so everything printed before is in it).

Config files are Tcl scripts, read as NAMD's ScriptTcl reads them: a real Tcl 8.6 interpreter (tkinter.Tcl(),
no display) sources the file, so `set`, `expr`, `if`, `proc`, `foreach`, `source` and `exec` run for real.
A command Tcl does not know is a keyword setting (`keyword value...`, `keyword = value`); NAMD's commands
(`run [norepeat] N`, `minimize N`, `reinitvels T`, `output`, `checkpoint`, `revert`, `print`, `callback`,
`exit`, `cv`, ...) are Tcl commands; the few the stand-in cannot model (`measure`, `coorfile`, atom exchange
between replicas, ...) are Tcl errors that say so. The first `run`/`minimize` (or another command that needs
the system) starts the simulation (NAMD's startup: the config is checked and the inputs read); keywords set
after that change the running simulation where NAMD's SimParameters::scriptSet allows it. Keywords are
checked against NAMD's own table, namd_keywords.json (kind, parent switch, repeats, range, version), read
from this script's directory or, in a checkout, from templates_app/. Feature inputs (constraints, colvars,
extra bonds, fixed atoms, FEP, SMD, grid forces, Tcl forces) are checked for existence and format only;
nothing is simulated for them. The engine knows nothing of the portal: only NAMD's command line and files.
Python 3.11 standard library plus tkinter (Debian's python3-tk): it runs with the cluster's /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import resource
import signal
import struct
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

try:
    import tkinter
except ImportError:  # reported as a FATAL ERROR by main(), so the log says what is missing
    tkinter = None

NAMD_PLATFORM = "Linux-x86_64-multicore"
BOLTZMANN = 0.0019872041  # kcal/(mol K)
TIMEFACTOR = 48.88821  # fs per internal (AKMA) time unit: DCD headers store the timestep in it
PDB_VELOCITY_FACTOR = 20.45482706  # internal velocity unit -> A/ps, for velocities in PDB files
AMU_PER_A3_IN_G_PER_CM3 = 1.66054
DEFAULT_SEED = 12345  # real NAMD seeds from the clock; a fixed default keeps runs repeatable
SPEED_VARIABLE = "NAMD_STANDIN_STEPS_PER_SECOND"
DEFAULT_STEPS_PER_SECOND = 500.0
MIN_SLEEP = 0.05  # s: between TIMING lines the engine sleeps in chunks at least this long
START = time.monotonic()

KEYWORD_TABLE = "namd_keywords.json"  # installed next to this script; in a checkout, in templates_app/
# Boolean switches whose default is on: their children are read even when the config does not set them.
DEFAULT_ON_SWITCHES = frozenset({"switching", "fftwusewisdom"})
# The keywords SimParameters::scriptSet accepts after startup; any other fails "Setting parameter ... failed!".
SCRIPT_SETTABLE = frozenset(
    word.lower()
    for word in """
    scriptArg1 scriptArg2 scriptArg3 scriptArg4 scriptArg5 scriptIntArg1 scriptIntArg2 scriptStringArg1
    scriptStringArg2 numsteps firsttimestep reassignTemp rescaleTemp velocityQuenching maximumMove Langevin
    langevinTemp langevinBAOAB loweAndersenTemp stochRescale stochRescaleTemp initialTemp useGroupPressure
    useFlexibleCell useConstantArea fixCellDims fixCellDimX fixCellDimY fixCellDimZ useConstantRatio
    LangevinPiston LangevinPistonTarget LangevinPistonPeriod LangevinPistonDecay LangevinPistonTemp
    SurfaceTensionTarget BerendsenPressure BerendsenPressureTarget BerendsenPressureCompressibility
    BerendsenPressureRelaxationTime constraintScaling consForceScaling drudeHardWall drudeBondConst drudeBondLen
    outputname outputEnergies restartname DCDfreq DCDfile velDCDfile tclBCArgs eField eFieldFreq eFieldPhase
    accelMDE accelMDalpha accelMDTE accelMDTalpha accelMDGSigma0P accelMDGSigma0D accelMDGRestartFile stirAxis
    stirPivot mgridforcescale mgridforcevoff fixedatoms alch alchEquilSteps alchLambda alchLambda2 alchLambdaIDWS
    alchLambdaFreq nonbondedScaling commOnly soluteScalingFactor soluteScalingFactorVdw soluteScalingFactorCharge
    """.split()  # noqa: SIM905 -- a keyword table reads best as a list of words
)
TRUE_WORDS = frozenset({"on", "yes", "true", "1"})
FALSE_WORDS = frozenset({"off", "no", "false", "0"})
# ParseOptions' unit names (case-insensitive); the table has no per-keyword units, so values are not converted
UNITS = frozenset(
    {"fs", "ns", "sec", "min", "hr", "a", "nm", "m", "kcal", "kj", "ev", "k", "angstrom", "kcal/mol", "kj/mol"}
)
PDB_COLUMNS = frozenset("XYZOB")  # the PDB fields NAMD reads a per-atom value from: x, y, z, occupancy, B
EXTRA_BOND_FIELDS = {"bond": (2, 2), "angl": (3, 2), "dihe": (4, 2), "impr": (4, 2)}  # atom ids, numbers per type
CHARM_OPTIONS_WITH_VALUE = frozenset(
    {"+p", "+ppn", "++ppn", "+devices", "+pemap", "+commap", "++p", "++n", "++np", "++nodelist", "+stacksize"}
)
C_NUMBER = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)"  # what C's strtod reads
C_FLOAT = re.compile(rf"\s*({C_NUMBER})", re.IGNORECASE)
C_VECTOR = re.compile(rf"\s*({C_NUMBER})\s*({C_NUMBER})\s*({C_NUMBER})", re.IGNORECASE)
INTEGER = re.compile(r"\s*[+-]?\d+\s*")  # what both sscanf("%d") alone and Tcl_GetInt accept (decimal)

ENERGY_TITLES = (
    "BOND",
    "ANGLE",
    "DIHED",
    "IMPRP",
    "ELECT",
    "VDW",
    "BOUNDARY",
    "MISC",
    "KINETIC",
    "TOTAL",
    "TEMP",
    "POTENTIAL",
    "TOTAL3",
    "TEMPAVG",
    "PRESSURE",
    "GPRESSURE",
    "VOLUME",
    "PRESSAVG",
    "GPRESSAVG",
)
ENERGY_GROUP_STARTS = (4, 9, 14)  # NAMD puts five more spaces before ELECT, TOTAL and PRESSURE
NON_PERIODIC_COLUMNS = 14  # without a periodic cell NAMD leaves out the pressure and volume columns
ENERGY_LIMIT = 9999999999.9999  # NAMD clamps ENERGY values to this magnitude
PRESSURE_COLUMN = 14  # ENERGY values (after TS) from here on: PRESSURE GPRESSURE VOLUME PRESSAVG GPRESSAVG
BENCHMARK_PHASES = 10  # NAMD reports its speed at the first 9 multiples of firstLdbStep of each command
LINE_SEARCH_STEPS = 5  # minimizer steps per line search (real NAMD takes a varying number)
BAD_CONTACT_STEPS = 2  # steps the minimizer spends moving atoms downhill before conjugate gradients
MIN_LINE_GOAL = 1e-3  # NAMD's minLineGoal: a line search reduces the gradient by this factor

# The energy model, per atom in kcal/mol, in the order BOND ANGLE DIHED IMPRP ELECT VDW.
RELAXED_PER_ATOM = (0.25, 0.60, 0.45, 0.03, -2.50, 0.35)  # near the energy minimum
STRAIN_PER_ATOM = (2.00, 1.00, 0.10, 0.05, 0.40, 3.00)  # added by the unminimized input structure
THERMAL_SHARE = (0.20, 0.30, 0.0, 0.0, 0.0, 0.0)  # share of the kinetic energy held by bonds and angles
STRAIN_DECAY_STEPS = 40.0  # minimization steps per e-fold of the strain
DYNAMICS_RELAXATION = 0.05  # dynamics relaxes the strain 20 times slower than minimization
DRIFT_AMPLITUDE = 0.25  # A: how far the output coordinates move away from the input ones
DRIFT_STEPS = 500.0

CHARMM_SECTIONS = {
    **dict.fromkeys(("BOND", "BONDS"), "BONDS"),
    **dict.fromkeys(("ANGL", "ANGLE", "ANGLES", "THETA", "THETAS"), "ANGLES"),
    **dict.fromkeys(("DIHE", "DIHEDRAL", "DIHEDRALS", "PHI"), "DIHEDRAL"),
    **dict.fromkeys(("IMPR", "IMPROPER", "IMPROPERS", "IMPHI"), "IMPROPER"),
    "CMAP": "CROSSTERM",
    **dict.fromkeys(("NONB", "NONBONDED", "NBONDED"), "VDW"),
    "NBFIX": "VDW_PAIRS",
    "NBTHOLE": "NBTHOLE_PAIRS",
    **dict.fromkeys(("ATOMS", "HBOND", "END", "RETURN"), None),
}
XPLOR_STATEMENTS = {
    "BOND": "BONDS",
    "ANGL": "ANGLES",
    "DIHE": "DIHEDRAL",
    "IMPR": "IMPROPER",
    "NONB": "VDW",
    "NBFI": "VDW_PAIRS",
}
PARAMETER_SUMMARY = ("BONDS", "ANGLES", "DIHEDRAL", "IMPROPER", "CROSSTERM", "VDW", "VDW_PAIRS", "NBTHOLE_PAIRS")
PSF_SUMMARY = (
    ("NBOND", "BONDS"),
    ("NTHETA", "ANGLES"),
    ("NPHI", "DIHEDRALS"),
    ("NIMPHI", "IMPROPERS"),
    ("NCRTERM", "CROSSTERMS"),
)

Vector = tuple[float, float, float]


class FatalError(Exception):
    """A NAMD_die: `errors` are printed as ERROR: lines before the FATAL ERROR: line.

    `locate`: the error comes from the script command being run, so the log names that command and its line.
    """

    def __init__(self, message: str, errors: list[str] | None = None, locate: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.locate = locate


class TclCommandError(Exception):
    """A Tcl error returned by one of NAMD's commands (`too few args`, ...): the script may catch it."""


# ----------------------------------------------------------------------------------------- output


def log(*lines: str) -> None:
    for line in lines:
        print(line)


def info(text: str) -> None:
    print(f"Info: {text}")


def warn(text: str) -> None:
    print(f"Warning: {text}")


def num(value: float) -> str:
    """A number as NAMD's C++ streams print it (like %g)."""
    return f"{value:g}"


def vec(vector: Vector) -> str:
    return " ".join(num(value) for value in vector)


def memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wall_clock() -> float:
    return time.monotonic() - START


def little_endian(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def report_fatal(error: FatalError) -> None:
    for line in error.errors:
        print(f"ERROR: {line}")
    print(f"FATAL ERROR: {error.message}")
    sys.stdout.flush()
    sys.stderr.write(
        f"------------- Processor 0 Exiting: Called CmiAbort ------------\nReason: FATAL ERROR: {error.message}\n"
    )


def terminate(signum: int, _frame: object) -> None:
    """Die of the signal like a killed NAMD; stdout is line-buffered, so the log is complete."""
    reason = signal.strsignal(signum) or "Terminated"
    os.write(2, f"------------- Processor 0 Exiting: Caught Signal ------------\nReason: {reason}\n".encode())
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def system_error(message: str, error: OSError) -> FatalError:
    """NAMD_err: the message, then the C library's description of errno."""
    return FatalError(f"{message}: {error.strerror}")


# ----------------------------------------------------------------------------------- command line


@dataclass
class CommandLine:
    config: str
    processors: int
    presets: list[tuple[str, str]]  # --keyword value, applied before the config file like NAMD does
    version: bool
    devices: str | None  # the +devices list, e.g. "0,1"
    program: str  # the name the engine was run under, e.g. "namd2"

    @property
    def build(self) -> Build:
        return build_for(self.program, self.devices)


@dataclass(frozen=True)
class Build:
    """The NAMD binary the engine plays: its version and Charm++, and whether it is a CUDA build."""

    version: str
    charm_commit: str
    charm_version: int
    cuda: bool

    @property
    def platform(self) -> str:
        return NAMD_PLATFORM + ("-CUDA" if self.cuda else "")

    @property
    def is_namd3(self) -> bool:
        return not self.version.startswith("2.")


def build_for(program: str, devices: str | None) -> Build:
    """NAMD 2.14 under a `namd2...` program name, else NAMD 3.0.1; `+devices` means a CUDA build."""
    if program.startswith("namd2"):
        return Build("2.14", "v6.10.2", 61002, cuda=devices is not None)
    return Build("3.0.1", "v7.0.0", 70000, cuda=devices is not None)


def processors_option(word: str, value: str | None) -> int | None:
    """The processor count of a +p option (`+p2` or `+p 2`), else None."""
    match = re.fullmatch(r"\+p(\d*)", word)
    count = match and (match.group(1) or value)
    return int(count) if count and count.isdigit() else None


def parse_command_line(program: str, args: list[str]) -> CommandLine:
    configs: list[str] = []
    presets: list[tuple[str, str]] = []
    processors, version, devices = 1, False, None
    words = iter(args)
    for word in words:
        if word in ("--version", "+version"):
            version = True
        elif word.startswith("--"):
            value = next(words, None)
            if value is None:
                raise FatalError(f"missing argument for command line option {word}")
            presets.append((word[2:], value))
        elif word.startswith("+"):
            value = next(words, None) if word in CHARM_OPTIONS_WITH_VALUE else None
            processors = processors_option(word, value) or processors
            devices = value if word == "+devices" and value else devices
        else:
            configs.append(word)
    if not version and not configs:
        raise FatalError("No simulation config file specified on command line.")
    if len(configs) > 1:
        raise FatalError("The NAMD stand-in takes exactly one simulation config file.")
    return CommandLine(configs[0] if configs else "", processors, presets, version, devices, program)


def steps_per_second() -> float | None:
    """The pace from the environment; None means as fast as possible."""
    text = os.environ.get(SPEED_VARIABLE, "").strip()
    if not text:
        return DEFAULT_STEPS_PER_SECOND
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if math.isnan(rate) or rate < 0:
        raise FatalError(f"{SPEED_VARIABLE} must be a number of steps per second, 0 or inf, not '{text}'")
    return None if rate == 0 or math.isinf(rate) else rate


def banner(command_line: CommandLine) -> list[str]:
    processors, build = command_line.processors, command_line.build
    lines = [
        "Charm++: standalone mode (not using charmrun)",
        f"Charm++> Running in Multicore mode: {processors} threads (PEs)",
        f"Converse/Charm++ Commit ID: {build.charm_commit}",
        "CharmLB> Load balancer assumes all CPUs are same.",
        f"Charm++> Running on 1 hosts (1 sockets x {processors} cores x 1 PUs = {processors}-way SMP)",
        "Charm++> cpu topology info is gathered in 0.000 seconds.",
        f"Info: NAMD {build.version} for {build.platform}",
        "Info: ",
        "Info: Please visit http://www.ks.uiuc.edu/Research/namd/",
        "Info: for updates, documentation, and support information.",
        "Info: ",
        "Info: Please cite Phillips et al., J. Chem. Phys. 153:044130 (2020) doi:10.1063/5.0014475",
        "Info: in all publications reporting results obtained with NAMD.",
        "Info: ",
        f"Info: Based on Charm++/Converse {build.charm_version} for multicore-linux-x86_64",
        "Info: NAMD stand-in engine: test equipment, no dynamics are computed",
    ]
    if build.cuda:
        lines.append("Info: Built with CUDA version 12020")
        host = os.uname().nodename
        lines += [
            f"Info: Pe {pe} physical rank {pe} binding to CUDA device {device} on {host}: 'NAMD stand-in device'  "
            "Mem: 0MB  Rev: 0.0  PCI: 0:0:0"
            for pe, device in enumerate((command_line.devices or "0").split(","))
        ]
    return [
        *lines,
        f"Info: Running on {processors} processors, 1 nodes, 1 physical nodes.",
        f"Info: Charm++/Converse parallel runtime startup completed at {wall_clock():.6f} seconds.",
        f"Info: {memory_mb():.6f} MB of memory in use based on /proc/self/stat",
    ]


def enter_config_directory(config: str) -> Path:
    """Change into the config file's directory, as NAMD does, and return the file's name there."""
    info(f"Configuration file is {config}")
    directory, slash, name = config.rpartition("/")
    if slash:
        try:
            os.chdir(directory or "/")
        except OSError as error:
            raise FatalError(f"{directory}: {error.strerror}") from None
    if not os.path.exists(name):
        if not slash and name[:1] in ("-", "+"):
            raise FatalError(f"Unknown command-line option {name}")
        raise FatalError(f"Unable to access config file {config}")
    info(f"Changed directory to {directory}" if slash else f"Working in the current directory {os.getcwd()}")
    return Path(name)


# ---------------------------------------------------------------------------------- keyword table


@dataclass(frozen=True)
class Keyword:
    """One of NAMD's config keywords, as namd_keywords.json describes it for one version."""

    name: str  # NAMD's spelling, printed in its messages
    kind: str  # int, float, bool, string, vector, file or anything
    parent: str | None  # lower-cased parent keyword: NAMD ignores this one while the parent is off
    multiple: bool  # may be given more than once
    range: str | None  # positive, not_negative or None


@dataclass(frozen=True)
class KeywordTable:
    """NAMD's keywords for one version, by lower-case name, and whether a repeated keyword is an error."""

    keywords: dict[str, Keyword]
    duplicate_is_error: bool
    parents: frozenset[str]

    def get(self, key: str) -> Keyword | None:
        return self.keywords.get(key.lower())

    def name(self, key: str) -> str:
        keyword = self.get(key)
        return keyword.name if keyword else key


def keyword_table_path() -> Path:
    """namd_keywords.json next to this script (the cluster's install), else the checkout's templates_app/ copy."""
    here = Path(__file__).resolve().parent
    candidates = (here / KEYWORD_TABLE, here.parent.parent / "templates_app" / KEYWORD_TABLE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FatalError(f"NAMD stand-in: keyword table {KEYWORD_TABLE} not found in {here} (run `localcluster install`)")


def load_keyword_table(path: Path, version: str) -> tuple[KeywordTable, tuple[str, ...]]:
    """The keywords `version` ("2.14" or "3.0") declares in a standard build (none declared under an #ifdef),
    and the Tcl commands NAMD registers, spelled as registered."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FatalError(f"NAMD stand-in: unreadable keyword table {path}: {error}") from None
    keywords: dict[str, Keyword] = {}
    for entry in data["keywords"]:
        if version not in entry["versions"] or (entry.get("build") or "").startswith("#ifdef"):
            continue
        entry = {**entry, **entry.get("version_overrides", {}).get(version, {})}
        keywords[entry["name"].lower()] = Keyword(
            entry["name"], entry["kind"], entry["parent"], entry["multiple"], entry["range"]
        )
    parents = frozenset(keyword.parent for keyword in keywords.values() if keyword.parent)
    commands = tuple(data.get("commands_as_registered") or data["commands"])
    return KeywordTable(keywords, bool(data["duplicate_is_error"]), parents), commands


def table_version(build: Build) -> str:
    return "3.0" if build.is_namd3 else "2.14"


# ------------------------------------------------------------------------------------ config list


@dataclass(frozen=True)
class Entry:
    """One keyword setting: NAMD's ConfigList keeps every value of a keyword, in order."""

    keyword: str  # as written
    value: str
    where: str  # for messages, e.g. '(file "job.namd" line 12)'

    @property
    def key(self) -> str:
        return self.keyword.lower()


class Config:
    """Parameter values by lower-case keyword, in the order given (NAMD's ConfigList)."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {}

    def add(self, entry: Entry) -> None:
        self.entries.setdefault(entry.key, []).append(entry)

    def replace(self, entry: Entry) -> None:
        self.entries[entry.key] = [entry]

    def text(self, key: str) -> str | None:
        entries = self.entries.get(key)
        return entries[0].value if entries else None

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(entry.value for entry in self.entries.get(key, []))


def config_setting(words: list[str]) -> tuple[str, str]:
    """NAMD's Tcl_config: the name (up to a `=`) and the words after it joined, from the first `#` word on dropped.

    Handles `name value`, `name=value`, `name= value`, `name =value`, `name = value` and several values.
    """
    name, equals, value = words[0].partition("=")
    rest = words[1:]
    comment = next((index for index, word in enumerate(rest) if word.startswith("#")), len(rest))
    rest = rest[:comment]
    if not equals and rest and rest[0].startswith("="):
        value, rest = rest[0][1:], rest[1:]
    for word in rest:  # NAMD appends a space only after a non-empty value
        value = f"{value} {word}" if value else word
    return name, value


# -------------------------------------------------------------------------------- keyword checks


def atobool(text: str) -> int:
    """ParseOptions::atoBool: 1, 0, or -1 for a word it does not know."""
    word = text.lower()
    return 1 if word in TRUE_WORDS else 0 if word in FALSE_WORDS else -1


def scan_value(keyword: Keyword, text: str) -> tuple[float | int | Vector | bool | str | None, list[str]]:
    """The value of `text` as ParseOptions reads this kind of keyword, and NAMD's messages if it cannot."""
    name = keyword.name
    if keyword.kind == "int":
        if INTEGER.fullmatch(text):
            return int(text), []
        return None, [f"Expecting only a number for '{name}' input, got: {text}"]
    if keyword.kind == "float":
        match = C_FLOAT.match(text)
        if not match:
            return None, [f"Expecting value and optional units for option '{name}'"]
        units = text[match.end() :].split()
        if len(units) > 1:
            return None, [
                f"Too much information given to '{name} = {text}'",
                "  - expecting a value and optional units",
            ]
        if units and units[0].lower() not in UNITS:
            return None, [f"Could not understand units '{units[0]}' in option '{name} = {text}"]
        return float(match.group(1)), []
    if keyword.kind == "vector":
        match = C_VECTOR.match(text)
        if not match:
            return None, [f"Could not translate the value '{text}'", f"  into a Vector for the option '{name}'"]
        return (float(match.group(1)), float(match.group(2)), float(match.group(3))), []
    if keyword.kind == "bool":
        flag = atobool(text)
        if flag < 0:
            return None, [f"ParseOptions can't understand '{text}' for the ", f" Boolean variable '{name}'"]
        return bool(flag), []
    return text, []


def range_error(keyword: Keyword, value: object) -> list[str]:
    if not isinstance(value, int | float) or isinstance(value, bool) or keyword.range is None:
        return []
    if (keyword.range == "positive" and value > 0) or (keyword.range == "not_negative" and value >= 0):
        return []
    should = "positive" if keyword.range == "positive" else "non-negative"
    shown = value if isinstance(value, int) else num(value)
    return [f"'{keyword.name}' was set to {shown} but it should be {should}"]


def located(lines: list[str], where: str) -> list[str]:
    """NAMD's message lines with the setting's file and line appended to the last one."""
    return [*lines[:-1], f"{lines[-1]} {where}".rstrip()] if lines else []


class KeywordCheck:
    """ParseOptions::set over a ConfigList: which keywords count, and NAMD's errors and warnings about the rest."""

    def __init__(self, config: Config, table: KeywordTable) -> None:
        self.config, self.table = config, table
        self.defined_memo: dict[str, bool] = {}

    def defined(self, key: str) -> bool:
        """Whether NAMD reads this keyword: its parents are on and it is set (a switch: set on, or on by default)."""
        if key not in self.defined_memo:
            self.defined_memo[key] = self._defined(key)
        return self.defined_memo[key]

    def _defined(self, key: str) -> bool:
        keyword = self.table.get(key)
        if keyword is None or (keyword.parent and not self.defined(keyword.parent)):
            return False
        value = self.config.text(key)
        switch = keyword.kind == "bool" and key in self.table.parents
        if value is None:
            return switch and key in DEFAULT_ON_SWITCHES
        return atobool(value) == 1 if switch else True

    def reachable(self, key: str) -> bool:
        keyword = self.table.get(key)
        return keyword is not None and (keyword.parent is None or self.defined(keyword.parent))

    def problems(self) -> tuple[list[list[str]], list[list[str]], list[str]]:
        """ERROR: line groups (repeats, unreadable values, ranges), the group of unknown keywords, Warning: lines."""
        errors: list[list[str]] = []
        ignored: list[str] = []
        invalid: list[str] = []
        for key, entries in self.config.entries.items():
            keyword, first = self.table.get(key), entries[0]
            wheres = " ".join(entry.where for entry in entries)
            if keyword is None:  # NAMD names each keyword once, as first written
                invalid.append(f"   {first.keyword} {wheres}".rstrip())
                continue
            if not self.reachable(key):
                ignored.append(f"   {keyword.name} ({self.table.name(keyword.parent or '')}) {wheres}".rstrip())
                continue
            if len(entries) > 1 and not keyword.multiple and self.table.duplicate_is_error:
                errors.append(
                    [
                        f"Multiple definitions of '{keyword.name}' {wheres}".rstrip(),
                        "  in the configuration file are not allowed",
                    ]
                )
            value, problems = scan_value(keyword, first.value)
            problems = problems or range_error(keyword, value)
            if problems:
                errors.append(located(problems, first.where))
        invalid_group = ["The following variables were set in the", "configuration file but are NOT VALID", *invalid]
        warnings = ["The following variables were set in the", "configuration file but will be ignored:", *ignored]
        return errors, [invalid_group] if invalid else [], warnings if ignored else []


# --------------------------------------------------------------------------------------- reading


class Reader:
    """Typed reads of a checked Config (NAMD's ParseOptions has already refused what it cannot read).

    Only a missing required keyword is an error here, collected as NAMD's ERROR: lines.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.errors: list[list[str]] = []

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.config.text(key)
        return default if value is None else value

    def required(self, name: str, meaning: str, parent: str | None = None) -> str:
        value = self.config.text(name.lower())
        if value is None:
            self.errors.append(
                [
                    f"'{name}' is a required configuration option",
                    *([f"  when '{parent}' is set"] if parent else []),
                    f"{name} defines:   {meaning}",
                ]
            )
        return value or ""

    def value(self, key: str, kind: str) -> object:
        text = self.config.text(key)
        if text is None:
            return None
        value, problems = scan_value(Keyword(key, kind, None, False, None), text)
        return None if problems else value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.value(key, "bool")
        return default if value is None else bool(value)

    def integer(self, key: str, default: int | None) -> int | None:
        value = self.value(key, "int")
        return default if value is None else int(value)

    def number(self, key: str, default: float | None) -> float | None:
        value = self.value(key, "float")
        return default if value is None else float(value)

    def vector(self, key: str) -> Vector | None:
        return self.value(key, "vector")


# --------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Cell:
    vectors: tuple[Vector | None, Vector | None, Vector | None]
    origin: Vector = (0.0, 0.0, 0.0)

    @property
    def periodic(self) -> bool:
        return all(self.vectors)

    @property
    def volume(self) -> float:
        if not self.periodic:
            return 0.0
        a, b, c = self.vectors
        cross = (b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0])
        return abs(sum(x * y for x, y in zip(a, cross, strict=True)))


@dataclass(frozen=True)
class Features:
    """Inputs of optional force terms: checked for existence and format, never simulated."""

    extra_bonds_files: tuple[str, ...] = ()
    constraints: tuple[str, str, str] | None = None  # consref, conskfile, conskcol
    colvars_files: tuple[str, ...] = ()
    fixed_atoms: tuple[str, str] | None = None  # fixedAtomsFile, fixedAtomsCol
    alch: tuple[str, str] | None = None  # alchFile, alchCol
    alch_lambdas: tuple[float, ...] = ()
    smd_file: str | None = None
    grid_files: tuple[tuple[str, str], ...] = ()  # (PDB of grid atoms, potential map) per grid
    tcl_forces_scripts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    structure: str
    coordinates: str
    parameters: tuple[str, ...]
    charmm_parameters: bool
    xplor_parameters: bool
    bincoordinates: str | None
    velocities: str | None
    binvelocities: str | None
    extended_system: str | None
    cell: Cell
    output_name: str
    binary_output: bool
    restart_name: str
    restart_freq: int
    restart_save: bool
    binary_restart: bool
    dcd_file: str
    dcd_freq: int
    dcd_unit_cell: bool
    xst_file: str
    xst_freq: int
    output_energies: int
    output_timing: int
    output_performance: bool
    output_pressure: int
    first_ldb_step: int
    timestep: float
    first_timestep: int
    numsteps: int | None
    steps_per_cycle: int
    temperature: float | None
    minimization: bool
    langevin: bool
    langevin_temp: float
    langevin_damping: float
    thermostat_temp: float | None  # the target of another temperature control (stochRescale, tCouple, ...)
    piston: bool
    piston_target: float
    piston_period: float
    piston_decay: float
    piston_temp: float
    pme: bool
    gpu_resident: bool
    cutoff: float
    switching: bool
    switch_dist: float
    pairlist_dist: float
    seed: int
    features: Features


def read_required_inputs(read: Reader) -> dict[str, str]:
    if read.flag("amber") or read.flag("gromacs"):
        raise FatalError("The NAMD stand-in reads only PSF/PDB systems: AMBER and GROMACS input is not supported")
    return {
        "structure": read.required("structure", "initial PSF structure file"),
        "coordinates": read.required("coordinates", "initial PDB coordinate file"),
        "output_name": read.required("outputname", "prefix for the final PDB position and velocity filenames"),
    }


def pdb_column(read: Reader, key: str, default: str) -> str:
    return (read.text(key) or default).strip().upper()


def read_features(read: Reader) -> Features:
    """Files NAMD needs only when a feature is on, with its required companions."""
    features = Features()
    if read.flag("extrabonds"):
        read.required("extraBondsFile", "file with extra bonded forces", "extraBonds")
        features = replace(features, extra_bonds_files=read.config.texts("extrabondsfile"))
    if read.flag("constraints"):
        consref = read.required("consref", "PDB file containing reference positions", "constraints")
        conskfile = read.required(
            "conskfile", "PDB file containing force constaints in one of the columns", "constraints"
        )
        features = replace(features, constraints=(consref, conskfile, pdb_column(read, "conskcol", "O")))
    if read.flag("colvars"):
        features = replace(features, colvars_files=read.config.texts("colvarsconfig"))
    if read.flag("fixedatoms"):
        fixed = read.text("fixedatomsfile") or read.text("coordinates") or ""
        features = replace(features, fixed_atoms=(fixed, pdb_column(read, "fixedatomscol", "O")))
    if read.flag("alch"):
        alch = read.text("alchfile") or read.text("coordinates") or ""
        lambdas = tuple(value for key in ("alchlambda", "alchlambda2") if (value := read.number(key, None)) is not None)
        features = replace(features, alch=(alch, pdb_column(read, "alchcol", "B")), alch_lambdas=lambdas)
    if read.flag("smd"):
        companions = (
            ("SMDk", "Elastic constant for SMD"),
            ("SMDVel", "Velocity of the SMD reference position"),
            ("SMDDir", "Direction of movement of the SMD reference position"),
        )
        for name, meaning in companions:
            read.required(name, meaning, "SMD")
        features = replace(features, smd_file=read.required("SMDFile", "SMD initial coordinates and atoms", "SMD"))
    grids = []
    if read.flag("gridforce"):
        grids.append(
            (
                read.required(
                    "gridforcefile", "PDB file containing force multipliers in one of the columns", "gridforce"
                ),
                read.required("gridforcepotfile", "Gridforce potential file", "gridforce"),
            )
        )
    if read.flag("mgridforce"):  # `mgridforceFile KEY FILE`: the grids are matched by key
        files = dict(value.split(None, 1) for value in read.config.texts("mgridforcefile") if len(value.split()) > 1)
        maps = dict(value.split(None, 1) for value in read.config.texts("mgridforcepotfile") if len(value.split()) > 1)
        grids += [(files[key].strip(), maps[key].strip()) for key in files if key in maps]
    features = replace(features, grid_files=tuple(grids))
    if read.flag("tclforces"):
        read.required("tclForcesScript", "Tcl forces script file", "tclForces")
        features = replace(features, tcl_forces_scripts=read.config.texts("tclforcesscript"))
    if read.flag("stochrescale"):
        read.required("stochRescaleTemp", "Temperature for stochastic velocity rescaling", "stochRescale")
        read.required("stochRescalePeriod", "Time scale for stochastic velocity rescaling", "stochRescale")
    return features


def thermostat_temperature(read: Reader) -> float | None:
    """The target of NAMD's other temperature controls, in the order NAMD would let one win."""
    if read.flag("stochrescale"):
        return read.number("stochrescaletemp", None)
    if read.flag("tcouple"):
        return read.number("tcoupletemp", None)
    if read.integer("reassignfreq", None):
        return read.number("reassigntemp", read.number("temperature", None))
    if read.integer("rescalefreq", None):
        return read.number("rescaletemp", read.number("temperature", None))
    return None


def read_dynamics(read: Reader) -> dict[str, object]:
    langevin, piston = read.flag("langevin"), read.flag("langevinpiston")
    if langevin:
        read.required("langevinTemp", "temperature for Langevin dynamics", "Langevin")
    if piston:
        for name in ("LangevinPistonTarget", "LangevinPistonPeriod", "LangevinPistonDecay", "LangevinPistonTemp"):
            read.required(name, "Langevin piston pressure control parameter", "LangevinPiston")
    return {
        "temperature": read.number("temperature", None),
        "minimization": read.flag("minimization"),
        "langevin": langevin,
        "langevin_temp": read.number("langevintemp", 0.0),
        "langevin_damping": read.number("langevindamping", 0.0),
        "thermostat_temp": thermostat_temperature(read),
        "piston": piston,
        "piston_target": read.number("langevinpistontarget", 1.01325),
        "piston_period": read.number("langevinpistonperiod", 100.0),
        "piston_decay": read.number("langevinpistondecay", 50.0),
        "piston_temp": read.number("langevinpistontemp", 0.0),
    }


def read_outputs(read: Reader, output_name: str) -> dict[str, object]:
    output_energies = max(1, read.integer("outputenergies", 1))
    steps_per_cycle = max(1, read.integer("stepspercycle", 20))
    # NAMD's default: the first load-balancing step, but at least ten energy outputs
    default_timing = max(5 * steps_per_cycle, 10 * output_energies)
    return {
        "binary_output": read.flag("binaryoutput", True),
        "restart_name": read.text("restartname", f"{output_name}.restart"),
        "restart_freq": read.integer("restartfreq", 0),
        "restart_save": read.flag("restartsave"),
        "binary_restart": read.flag("binaryrestart", True),
        "dcd_file": read.text("dcdfile", f"{output_name}.dcd"),
        "dcd_freq": read.integer("dcdfreq", 0),
        "dcd_unit_cell": read.flag("dcdunitcell", True),
        "xst_file": read.text("xstfile", f"{output_name}.xst"),
        "xst_freq": read.integer("xstfreq", 0),
        "output_energies": output_energies,
        "output_timing": max(0, read.integer("outputtiming", default_timing)),  # 0: no TIMING lines
        "output_performance": read.flag("outputperformance", True),
        "output_pressure": max(0, read.integer("outputpressure", 0)),
        "first_ldb_step": max(1, read.integer("firstldbstep", 5 * steps_per_cycle)),
        "steps_per_cycle": steps_per_cycle,
    }


def read_settings(read: Reader) -> Settings:
    """Settings from a checked config; missing required keywords are left in `read.errors`."""
    inputs = read_required_inputs(read)
    read.required("parameters", "parameter file")
    read.required("exclude", "Electrostatic and VDW exclusion policy")
    cutoff = read.number("cutoff", None)
    if cutoff is None:
        read.required("cutoff", "local electrostatic and Vdw distance")
        cutoff = 0.0
    return Settings(
        **inputs,
        **read_dynamics(read),
        **read_outputs(read, inputs["output_name"]),
        features=read_features(read),
        parameters=read.config.texts("parameters"),
        charmm_parameters=read.flag("paratypecharmm"),
        xplor_parameters=read.flag("paratypexplor"),
        bincoordinates=read.text("bincoordinates"),
        velocities=read.text("velocities"),
        binvelocities=read.text("binvelocities"),
        extended_system=read.text("extendedsystem"),
        cell=Cell(
            (read.vector("cellbasisvector1"), read.vector("cellbasisvector2"), read.vector("cellbasisvector3")),
            read.vector("cellorigin") or (0.0, 0.0, 0.0),
        ),
        timestep=read.number("timestep", 1.0),
        first_timestep=read.integer("firsttimestep", 0),
        numsteps=read.integer("numsteps", None),
        pme=read.flag("pme"),
        gpu_resident=read.flag("cudasoaintegrate") | read.flag("gpuresident"),
        cutoff=cutoff,
        switching=read.flag("switching"),
        switch_dist=read.number("switchdist", cutoff),
        pairlist_dist=read.number("pairlistdist", cutoff),
        seed=read.integer("seed", DEFAULT_SEED),
    )


def read_extended_system(path: str) -> Cell:
    info(f"EXTENDED SYSTEM FILE   {path}")
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        raise FatalError("Unable to open extended system file.") from None
    labels = next((line.split()[1:] for line in lines if line.startswith("#$LABELS ")), None)
    data = next((line.split() for line in lines if line.strip() and not line.startswith("#")), None)
    try:
        fields = dict(zip(labels or [], map(float, data or []), strict=True))
    except ValueError:
        fields = {}
    if not fields:
        raise FatalError("Error reading extended system file.")

    def vector(prefix: str) -> Vector | None:
        keys = [f"{prefix}_{axis}" for axis in "xyz"]
        return (fields[keys[0]], fields[keys[1]], fields[keys[2]]) if all(key in fields for key in keys) else None

    return Cell((vector("a"), vector("b"), vector("c")), vector("o") or (0.0, 0.0, 0.0))


def check_config(settings: Settings) -> Cell:
    """NAMD's checks after parsing (SimParameters::check_config); returns the periodic cell."""
    if settings.charmm_parameters and settings.xplor_parameters:
        raise FatalError("Please specify either XPLOR or CHARMM format for parameters!")
    has_velocities = settings.velocities or settings.binvelocities
    if settings.temperature is None and not has_velocities and not settings.minimization:
        raise FatalError("Must have either an initial temperature or a velocity file")
    if any(not 0.0 <= value <= 1.0 for value in settings.features.alch_lambdas):
        raise FatalError("Alchemical lambda values should be in the range [0.0, 1.0]")
    cell = read_extended_system(settings.extended_system) if settings.extended_system else settings.cell
    if settings.pme and cell.volume == 0:
        raise FatalError("PME requires periodic boundary conditions.")
    return cell


def print_parameters(s: Settings, cell: Cell) -> None:
    info("SIMULATION PARAMETERS:")
    info(f"TIMESTEP               {num(s.timestep)}")
    info(f"NUMBER OF STEPS        {s.numsteps or 0}")
    info(f"STEPS PER CYCLE        {s.steps_per_cycle}")
    for index, vector in enumerate(cell.vectors, 1):
        if vector:
            info(f"PERIODIC CELL BASIS {index}  {vec(vector)}")
    if any(cell.vectors):
        info(f"PERIODIC CELL CENTER   {vec(cell.origin)}")
    velocity_file = s.binvelocities or s.velocities
    if velocity_file:
        info(f"VELOCITY FILE          {velocity_file}")
    else:
        info(f"INITIAL TEMPERATURE    {num(s.temperature or 0.0)}")
    print_output_parameters(s)
    print_force_field_parameters(s)


def print_output_parameters(s: Settings) -> None:
    if s.dcd_freq:
        info(f"DCD FILENAME           {s.dcd_file}")
        info(f"DCD FREQUENCY          {s.dcd_freq}")
        info(f"DCD FIRST STEP         {s.first_timestep + s.dcd_freq}")
    else:
        info("NO DCD TRAJECTORY OUTPUT")
    if s.xst_freq:
        info(f"XST FILENAME           {s.xst_file}")
        info(f"XST FREQUENCY          {s.xst_freq}")
    else:
        info("NO EXTENDED SYSTEM TRAJECTORY OUTPUT")
    info(f"OUTPUT FILENAME        {s.output_name}")
    if s.binary_output:
        info("BINARY OUTPUT FILES WILL BE USED")
    if s.restart_freq:
        info(f"RESTART FILENAME       {s.restart_name}")
        info(f"RESTART FREQUENCY      {s.restart_freq}")
        if s.restart_save:
            info("RESTART FILES WILL NOT BE OVERWRITTEN")
        if s.binary_restart:
            info("BINARY RESTART FILES WILL BE USED")
    else:
        info("NO RESTART FILE")
    if s.output_energies != 1:
        info(f"ENERGY OUTPUT STEPS    {s.output_energies}")
    info(f"TIMING OUTPUT STEPS    {s.output_timing}")


def print_force_field_parameters(s: Settings) -> None:
    if s.switching:
        info("SWITCHING ACTIVE")
        info(f"SWITCHING ON           {num(s.switch_dist)}")
        info(f"SWITCHING OFF          {num(s.cutoff)}")
    else:
        info(f"CUTOFF                 {num(s.cutoff)}")
    info(f"PAIRLIST DISTANCE      {num(s.pairlist_dist)}")
    if s.langevin:
        info("LANGEVIN DYNAMICS ACTIVE")
        info(f"LANGEVIN TEMPERATURE   {num(s.langevin_temp)}")
        info(f"LANGEVIN DAMPING COEFFICIENT IS {num(s.langevin_damping)} INVERSE PS")
    if s.piston:
        info("LANGEVIN PISTON PRESSURE CONTROL ACTIVE")
        info(f"       TARGET PRESSURE IS {num(s.piston_target)} BAR")
        info(f"    OSCILLATION PERIOD IS {num(s.piston_period)} FS")
        info(f"            DECAY TIME IS {num(s.piston_decay)} FS")
        info(f"    PISTON TEMPERATURE IS {num(s.piston_temp)} K")
    if s.pme:
        info("PARTICLE MESH EWALD (PME) ACTIVE")
    info(f"RANDOM NUMBER SEED     {s.seed}")
    info(f"COORDINATE PDB         {s.coordinates}")
    info(f"STRUCTURE FILE         {s.structure}")
    info(f"PARAMETER file: {'CHARMM' if s.charmm_parameters else 'XPLOR'} format! ")
    for path in s.parameters:
        info(f"PARAMETERS             {path}")


# ------------------------------------------------------------------------------------ input files


@dataclass(frozen=True)
class Structure:
    masses: tuple[float, ...]
    charge: float
    counts: dict[str, int]  # PSF section sizes: NATOM, NBOND, NTHETA, ...

    @property
    def atoms(self) -> int:
        return len(self.masses)

    @property
    def degrees_of_freedom(self) -> int:
        return max(0, 3 * self.atoms - 3)  # NAMD removes the center of mass motion


def count_charmm_parameters(text: str) -> Counter[str]:
    """Parameter counts by section; the topology part of a toppar stream file (`read rtf card` to END) is skipped."""
    counts: Counter[str] = Counter()
    section, continued, topology = None, False, False
    for raw in text.splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line or line.startswith("*"):
            continue
        words = line.upper().split()
        if topology:
            topology = words[0] not in ("END", "RETURN")
            continue
        if words[0] == "READ":
            topology, section = "RTF" in words, None
            continue
        if continued:  # a section header continued with a trailing "-"
            continued = line.endswith("-")
            continue
        head = words[0]
        if head in CHARMM_SECTIONS:
            section, continued = CHARMM_SECTIONS[head], line.endswith("-")
        elif section and head[0].isalpha():  # skip the numbers of CMAP grids
            counts[section] += 1
    return counts


def count_xplor_parameters(text: str) -> Counter[str]:
    heads = (line.split()[0].upper()[:4] for line in text.splitlines() if line.split())
    return Counter(XPLOR_STATEMENTS[head] for head in heads if head in XPLOR_STATEMENTS)


def read_parameter_files(settings: Settings) -> None:
    kind = "CHARMM" if settings.charmm_parameters else "XPLOR"
    count = count_charmm_parameters if settings.charmm_parameters else count_xplor_parameters
    totals: Counter[str] = Counter()
    for path in settings.parameters:
        try:
            totals += count(Path(path).read_text(errors="replace"))
        except OSError:
            raise FatalError(f"UNABLE TO OPEN {kind} PARAMETER FILE {path}") from None
    info("SUMMARY OF PARAMETERS:")
    for name in PARAMETER_SUMMARY:
        info(f"{totals[name]} {name}")


def read_psf(path: str) -> Structure:
    try:
        lines = iter(Path(path).read_text(errors="replace").splitlines())
    except OSError:
        raise FatalError(f"UNABLE TO OPEN .psf FILE {path}") from None
    counts: dict[str, int] = {}
    masses: list[float] = []
    charge = 0.0
    for line in lines:
        words = line.split()
        if len(words) < 2 or not words[1].startswith("!N") or not words[0].isdigit():
            continue
        title = words[1].strip("!:")
        counts[title] = int(words[0])
        if title == "NATOM":
            for _ in range(counts[title]):
                atom = next(lines, "").split()
                try:
                    charge += float(atom[6])
                    masses.append(float(atom[7]))
                except (IndexError, ValueError):
                    raise FatalError(f"BAD ATOM LINE FOUND IN .psf FILE {path}") from None
    if "NATOM" not in counts:
        raise FatalError("EOF ENCOUNTERED LOOKING FOR NATOM LINE IN .psf FILE")
    return Structure(tuple(masses), charge, counts)


def read_pdb(path: str) -> list[str]:
    """The ATOM and HETATM records of a PDB file."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        raise FatalError(f"Cannot open file '{path}' for input in PDB::PDB.: {error.strerror}") from None
    return [line for line in lines if line.startswith(("ATOM", "HETATM"))]


def pdb_vectors(records: list[str], path: str, scale: float = 1.0) -> array:
    values = array("d")
    try:
        for record in records:
            values.extend(float(record[start : start + 8]) * scale for start in (30, 38, 46))
    except ValueError:
        raise FatalError(f"Bad coordinates in PDB file {path}") from None
    return values


def read_binary_vectors(path: str, atoms: int) -> array:
    """A NAMD binary coordinate or velocity file: int32 atom count, then x, y, z float64 per atom."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise FatalError(f"Unable to open binary file {path}") from None
    if len(data) < 4:
        raise FatalError(f"Error reading binary file {path}")
    little, big = struct.unpack("<i", data[:4])[0], struct.unpack(">i", data[:4])[0]
    if atoms not in (little, big):
        raise FatalError(f"Incorrect atom count in binary file {path}")
    if len(data) < 4 + 24 * atoms:
        raise FatalError(f"Error reading binary file {path}")
    values = array("d")
    values.frombytes(data[4 : 4 + 24 * atoms])
    if (little == atoms) == (sys.byteorder == "big"):
        values.byteswap()
    return values


def kinetic_temperature(velocities: array, structure: Structure) -> float:
    """The temperature of a velocity file; like the velocities this engine writes, with 3N degrees of freedom."""
    if not structure.atoms:
        return 0.0
    twice_kinetic = sum(
        mass * (velocities[3 * i] ** 2 + velocities[3 * i + 1] ** 2 + velocities[3 * i + 2] ** 2)
        for i, mass in enumerate(structure.masses)
    )
    return twice_kinetic / (3 * structure.atoms * BOLTZMANN)


def check_pdb(path: str, atoms: int, what: str) -> list[str]:
    """The ATOM/HETATM records of a feature's PDB file, which must have the structure's atom count."""
    records = read_pdb(path)
    if len(records) != atoms:
        raise FatalError(f"Number of atoms in {what} PDB doesn't match coordinate PDB")
    return records


def check_column(column: str, keyword: str) -> None:
    if column not in PDB_COLUMNS:
        raise FatalError(f"{keyword} must have value of X, Y, Z, O, or B")


def check_extra_bonds(path: str, atoms: int) -> None:
    """Molecule::build_extra_bonds: bond/angle/dihedral/improper lines with atom ids (from 0) and two numbers."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        raise system_error(f"UNABLE TO OPEN EXTRA BONDS FILE {path}", error) from None
    info(f"READING EXTRA BONDS FILE {path}")
    for line in lines:
        words = line.split()
        if not words or words[0].startswith("#") or words[0][:4].lower() == "wall":
            continue
        ids, numbers = EXTRA_BOND_FIELDS.get(words[0][:4].lower(), (0, 0))
        fields = words[1 : 1 + ids + numbers]
        try:
            atom_ids = [int(word) for word in fields[:ids]]
            [float(word) for word in fields[ids:]]
        except ValueError:
            atom_ids = []
        if not ids or len(fields) < ids + numbers or len(atom_ids) != ids:
            raise FatalError(f"BAD LINE IN EXTRA BONDS FILE {path}: {line}")
        if any(not 0 <= atom < atoms for atom in atom_ids):
            raise FatalError(f"BAD ATOM ID IN EXTRA BONDS FILE {path}: {line}")


def check_colvars_config(path: str) -> None:
    """A Colvars configuration: readable and defining at least one collective variable."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        raise FatalError(f"Unable to open text file {path}") from None
    check_colvars_text(text, f'"{path}"')


def check_colvars_text(text: str, where: str) -> None:
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    if not re.search(r"\bcolvar\s*\{", "\n".join(lines), re.IGNORECASE):
        log(f'colvars: Error: no collective variables ("colvar {{ ... }}" blocks) are defined in {where}.')
        raise FatalError("Error in the collective variables module: exiting.")


def check_feature_files(features: Features, atoms: int) -> None:
    """Existence and format of the inputs of enabled features, in the order NAMD's startup reads them."""
    if features.constraints:
        consref, conskfile, column = features.constraints
        check_pdb(consref, atoms, "constraint reference")
        if conskfile.lower() != consref.lower():
            check_pdb(conskfile, atoms, "constraint constant")
        check_column(column, "conskcol")
    if features.fixed_atoms:
        check_pdb(features.fixed_atoms[0], atoms, "fixed atoms")
        check_column(features.fixed_atoms[1], "fixedAtomsCol")
    if features.alch:  # the stand-in's words, in NAMD's pattern for the PDB files above
        check_pdb(features.alch[0], atoms, "alchemical flags")
        check_column(features.alch[1], "alchCol")
    if features.smd_file:
        check_pdb(features.smd_file, atoms, "SMD")
    for atoms_file, map_file in features.grid_files:
        check_pdb(atoms_file, atoms, "gridforce")
        if not os.path.isfile(map_file):
            raise FatalError(f"Unable to open grid force potential file {map_file}")
    for path in features.extra_bonds_files:
        check_extra_bonds(path, atoms)
    for script in features.tcl_forces_scripts:
        if "\n" not in script and not os.path.isfile(script):  # a value with newlines is the script itself
            raise FatalError(f'couldn\'t read file "{script}": no such file or directory')
    for path in features.colvars_files:
        check_colvars_config(path)


@dataclass
class Inputs:
    structure: Structure
    pdb_records: list[str]
    positions: array
    velocity_temperature: float


def load_inputs(settings: Settings) -> Inputs:
    read_parameter_files(settings)
    structure = read_psf(settings.structure)
    info(f"Reading pdb file {settings.coordinates}")
    records = read_pdb(settings.coordinates)
    if len(records) != structure.atoms:
        raise FatalError("Number of pdb and psf atoms are not the same!")
    positions = pdb_vectors(records, settings.coordinates)
    if settings.bincoordinates:
        info(f"Reading from binary file {settings.bincoordinates}")
        positions = read_binary_vectors(settings.bincoordinates, structure.atoms)
    temperature = settings.temperature or 0.0
    if settings.binvelocities:
        info(f"Reading from binary file {settings.binvelocities}")
        temperature = kinetic_temperature(read_binary_vectors(settings.binvelocities, structure.atoms), structure)
    elif settings.velocities:
        velocity_records = read_pdb(settings.velocities)
        if len(velocity_records) != structure.atoms:
            raise FatalError("Number of pdb and psf atoms are not the same!")
        velocities = pdb_vectors(velocity_records, settings.velocities, 1 / PDB_VELOCITY_FACTOR)
        temperature = kinetic_temperature(velocities, structure)
    check_feature_files(settings.features, structure.atoms)
    return Inputs(structure, records, positions, temperature)


def print_structure_summary(structure: Structure, cell: Cell) -> None:
    mass = sum(structure.masses)
    info("****************************")
    info("STRUCTURE SUMMARY:")
    info(f"{structure.atoms} ATOMS")
    for key, name in PSF_SUMMARY:
        info(f"{structure.counts.get(key, 0)} {name}")
    info(f"{structure.degrees_of_freedom} DEGREES OF FREEDOM")
    info(f"TOTAL MASS = {num(mass)} amu")
    info(f"TOTAL CHARGE = {num(round(structure.charge, 6) + 0.0)} e")
    if cell.volume:
        info(f"MASS DENSITY = {num(mass * AMU_PER_A3_IN_G_PER_CM3 / cell.volume)} g/cm^3")
        info(f"ATOM DENSITY = {num(structure.atoms / cell.volume)} atoms/A^3")
    info("*****************************")


# ------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Frame:
    """What the energies of one ENERGY line depend on."""

    step: int
    minimizing: bool
    relaxation: float  # minimization-equivalent steps of relaxation so far
    temperature: float  # thermostat target, K
    volume: float
    barostat: bool
    pressure_target: float  # bar
    averaging: int  # steps averaged by TEMPAVG, PRESSAVG and GPRESSAVG


class EnergyModel:
    """Closed-form seeded energies: no atom moves, so each ENERGY line costs the same tiny amount."""

    def __init__(self, atoms: int, degrees_of_freedom: int, seed: int) -> None:
        rng = random.Random(f"{seed}:system")
        self.seed = seed
        self.atoms = atoms
        self.dof = degrees_of_freedom
        self.relaxed = [atoms * energy * (1 + 0.05 * rng.uniform(-1, 1)) for energy in RELAXED_PER_ATOM]
        self.strain = [atoms * energy * (1 + 0.2 * rng.uniform(-1, 1)) for energy in STRAIN_PER_ATOM]
        self.temperature_spread = min(0.15, math.sqrt(2 / degrees_of_freedom)) if degrees_of_freedom else 0.0
        self.pressure_spread = min(500.0, 3e4 / math.sqrt(max(atoms, 1)))

    def strain_left(self, relaxation: float) -> float:
        return sum(self.strain) * math.exp(-relaxation / STRAIN_DECAY_STEPS)

    def gradient(self, relaxation: float) -> float:
        """The minimizer's |f.v|, (kcal/mol/A)^2: it falls with the strain left."""
        return (10 * self.strain_left(relaxation)) ** 2

    def pressure_tensor(self, pressure: float, step: int, label: str) -> list[float]:
        """A symmetric tensor (xx xy xz yx yy yz zx zy zz, bar) whose trace / 3 is `pressure`."""
        rng = random.Random(f"{self.seed}:{step}:{label}")
        diagonal = [rng.gauss(0, 0.3 * self.pressure_spread) for _ in range(3)]
        xx, yy, zz = (value + pressure - sum(diagonal) / 3 for value in diagonal)
        xy, xz, yz = (rng.gauss(0, 0.1 * self.pressure_spread) for _ in range(3))
        return [xx, xy, xz, xy, yy, yz, xz, yz, zz]

    def columns(self, frame: Frame) -> list[float]:
        """BOND ... TEMPAVG, plus the pressure and volume columns of a periodic system."""
        rng = random.Random(f"{self.seed}:{frame.step}:{frame.minimizing}")
        decay = math.exp(-frame.relaxation / STRAIN_DECAY_STEPS)
        thermal = 0.0 if frame.minimizing else 0.5 * self.dof * BOLTZMANN * frame.temperature
        terms = [
            relaxed + strain * decay + share * thermal
            for relaxed, strain, share in zip(self.relaxed, self.strain, THERMAL_SHARE, strict=True)
        ]
        temperature = average_temperature = 0.0
        if not frame.minimizing:  # minimization has no velocities; dynamics fluctuates around the target
            terms = [term + rng.gauss(0, 0.02 * abs(term) + 0.01) for term in terms]
            temperature = max(0.0, frame.temperature * (1 + self.temperature_spread * rng.gauss(0, 1)))
            spread = self.temperature_spread / math.sqrt(frame.averaging)
            average_temperature = max(0.0, frame.temperature * (1 + spread * rng.gauss(0, 1)))
        kinetic = 0.5 * self.dof * BOLTZMANN * temperature
        potential = sum(terms)
        total = potential + kinetic
        total3 = total if frame.minimizing else total + rng.gauss(0, 0.01 * math.sqrt(self.atoms))
        values = [*terms, 0.0, 0.0, kinetic, total, temperature, potential, total3, average_temperature]
        if frame.volume > 0:
            values += self.pressure_columns(frame, rng)
        return values

    def pressure_columns(self, frame: Frame, rng: random.Random) -> list[float]:
        target, spread = frame.pressure_target, self.pressure_spread
        averaged = spread / math.sqrt(frame.averaging)
        volume = frame.volume * (1 + 0.002 * rng.gauss(0, 1)) if frame.barostat else frame.volume
        return [
            target + spread * rng.gauss(0, 1),
            target + 0.6 * spread * rng.gauss(0, 1),
            volume,
            target + averaged * rng.gauss(0, 1),
            target + 0.6 * averaged * rng.gauss(0, 1),
        ]


def energy_row(head: str, cells: list[str]) -> str:
    return head + "".join(("     " if index in ENERGY_GROUP_STARTS else "") + cell for index, cell in enumerate(cells))


def etitle_line(columns: int) -> str:
    return energy_row("ETITLE:      TS", [f" {title:>14}" for title in ENERGY_TITLES[:columns]])


def energy_line(step: int, values: list[float]) -> str:
    return energy_row(f"ENERGY: {step:7d}", [f" {max(-ENERGY_LIMIT, min(ENERGY_LIMIT, v)):14.4f}" for v in values])


# ---------------------------------------------------------------------------------- output files


def keep_backup(path: str, suffix: str) -> None:
    """NAMD renames an existing output file before replacing it (.BAK, or .old for restart files)."""
    if os.path.exists(path):
        os.replace(path, path + suffix)


def write_output(path: str, data: bytes, kind: str) -> None:
    """Write an output file where the config names it; like NAMD, a missing folder is an error, not created."""
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise system_error(f"Unable to open {kind} file {path}", error) from None


def binary_vectors(vectors: array) -> bytes:
    return struct.pack("<i", len(vectors) // 3) + little_endian(vectors)


def pdb_text(records: list[str], vectors: array, scale: float) -> bytes:
    rows = [
        f"{record[:30]}{vectors[3 * i] * scale:8.3f}{vectors[3 * i + 1] * scale:8.3f}"
        f"{vectors[3 * i + 2] * scale:8.3f}{record[54:]}"
        for i, record in enumerate(records)
    ]
    return "\n".join(["REMARK WRITTEN BY THE NAMD STAND-IN ENGINE", *rows, "END", ""]).encode()


def cell_columns(cell: Cell, barostat: bool) -> tuple[list[str], list[float]]:
    """The labels and values of an .xsc/.xst line (after the step)."""
    labels: list[str] = []
    values: list[float] = []
    for name, vector in zip("abc", cell.vectors, strict=True):
        if vector:
            labels += [f"{name}_x", f"{name}_y", f"{name}_z"]
            values += vector
    labels += ["o_x", "o_y", "o_z"]
    values += cell.origin
    if barostat:  # NAMD adds the piston's strain rate
        labels += ["s_x", "s_y", "s_z", "s_u", "s_v", "s_w"]
        values += [0.0] * 6
    return labels, values


def xsc_header(kind: str, cell: Cell, barostat: bool) -> str:
    labels, _ = cell_columns(cell, barostat)
    return f"# NAMD extended system {kind} file\n#$LABELS step {' '.join(labels)}\n"


def xsc_row(step: int, cell: Cell, barostat: bool) -> str:
    _, values = cell_columns(cell, barostat)
    return f"{step} {' '.join(f'{value:.10g}' for value in values)}\n"


def unit_cell_record(cell: Cell) -> tuple[float, ...]:
    """DCD unit cell: |a|, cos(a,b), |b|, cos(a,c), cos(b,c), |c|."""
    a, b, c = cell.vectors

    def dot(u: Vector, v: Vector) -> float:
        return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]

    la, lb, lc = math.sqrt(dot(a, a)), math.sqrt(dot(b, b)), math.sqrt(dot(c, c))
    return la, dot(a, b) / (la * lb), lb, dot(a, c) / (la * lc), dot(b, c) / (lb * lc), lc


class DcdWriter:
    """A CHARMM/NAMD DCD trajectory; the header's frame count is brought up to date after each frame."""

    def __init__(self, path: str, atoms: int, timestep: float, period: int, cell: Cell | None) -> None:
        self.path, self.atoms, self.timestep, self.period, self.cell = path, atoms, timestep, period, cell
        self.handle = None
        self.frames = 0

    def open(self, first_step: int) -> None:
        keep_backup(self.path, ".BAK")
        try:
            self.handle = open(self.path, "w+b")  # noqa: SIM115 -- stays open across frames, closed in close()
        except OSError as error:
            raise system_error(f"Couldn't open DCD file {self.path}", error) from None
        user = os.environ.get("USER", "namd")
        remarks = [
            f"REMARKS FILENAME={self.path} CREATED BY NAMD",
            f"REMARKS DATE: {time.strftime('%m/%d/%y')} CREATED BY USER: {user}",
        ]
        control = [0, first_step, self.period, first_step - self.period, 0, 0, 0, 0, 0]
        unit_cell_flag = int(self.cell is not None)
        self.handle.write(
            struct.pack(
                "<i4s9ifi8iii", 84, b"CORD", *control, self.timestep / TIMEFACTOR, unit_cell_flag, *[0] * 8, 24, 84
            )
        )
        self.handle.write(struct.pack("<ii", 164, 2) + b"".join(r.encode()[:80].ljust(80) for r in remarks))
        self.handle.write(struct.pack("<i", 164) + struct.pack("<3i", 4, self.atoms, 4))

    def write(self, step: int, positions: array) -> None:
        if self.handle is None:
            self.open(step)
        if self.cell is not None:
            self.handle.write(struct.pack("<i6di", 48, *unit_cell_record(self.cell), 48))
        size = struct.pack("<i", 4 * self.atoms)
        for axis in range(3):
            self.handle.write(size + little_endian(array("f", positions[axis::3])) + size)
        self.frames += 1
        self.handle.seek(8)  # NFILE
        self.handle.write(struct.pack("<i", self.frames))
        self.handle.seek(20)  # NSTEP
        self.handle.write(struct.pack("<i", step))
        self.handle.seek(0, os.SEEK_END)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


# ------------------------------------------------------------------------------------- simulation


class Pacer:
    """Sleeps so that the steps take 1/rate seconds each, in chunks rather than per step."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.origin_step, self.origin_time = 0, 0.0

    def begin(self, step: int) -> None:
        self.origin_step, self.origin_time = step, time.monotonic()

    def wait(self, step: int, exact: bool) -> None:
        if self.rate is None:
            return
        delay = self.origin_time + (step - self.origin_step) / self.rate - time.monotonic()
        if delay > (0.0 if exact else MIN_SLEEP):
            time.sleep(delay)


class Timing:
    """TIMING: and PERFORMANCE: lines from the engine's real elapsed wall and CPU time."""

    def __init__(self) -> None:
        self.step, self.wall, self.cpu = 0, 0.0, 0.0
        self.benchmark_wall = 0.0
        self.samples = (0, 0.0, 0.0)  # count, sum and sum of squares of the s/step of the TIMING lines

    def begin(self, step: int) -> None:
        self.step, self.wall, self.cpu = step, wall_clock(), time.process_time()
        self.benchmark_wall = self.wall
        self.samples = (0, 0.0, 0.0)

    def benchmark_line(self, phase: int, processors: int, steps: int, timestep: float) -> str:
        """NAMD's `Initial time:` (phases 1-3) or `Benchmark time:` line over the last `steps` steps."""
        wall = wall_clock()
        wall_per_step = (wall - self.benchmark_wall) / steps
        self.benchmark_wall = wall
        days_per_ns = wall_per_step / 86400 / (timestep * 1e-6) if timestep > 0 else 0.0
        kind = "Initial" if phase < 4 else "Benchmark"
        return (
            f"Info: {kind} time: {processors} CPUs {wall_per_step:g} s/step {days_per_ns:g} days/ns "
            f"{memory_mb():g} MB memory"
        )

    def lines(self, step: int, printed: bool, last_step: int, timestep: float, performance: bool) -> list[str]:
        wall, cpu = wall_clock(), time.process_time()
        steps = step - self.step
        wall_per_step, cpu_per_step = (wall - self.wall) / steps, (cpu - self.cpu) / steps
        self.step, self.wall, self.cpu = step, wall, cpu
        if not printed:
            return []
        hours = wall_per_step * (last_step - step) / 3600
        lines = [
            f"TIMING: {step}  CPU: {cpu:g}, {cpu_per_step:g}/step  Wall: {wall:g}, {wall_per_step:g}/step, "
            f"{hours:g} hours remaining, {memory_mb():f} MB of memory in use."
        ]
        count, total, squares = self.samples
        self.samples = count, total, squares = count + 1, total + wall_per_step, squares + wall_per_step**2
        if performance:  # running sums: a long run has many TIMING lines
            mean = total / count
            deviation = math.sqrt(max(0.0, squares / count - mean * mean))
            ns_per_day = timestep * 1e-6 * 86400 / mean if mean > 0 else 0.0
            lines.append(
                f"PERFORMANCE: {step}  averaging {ns_per_day:g} ns/day, {mean:g} sec/step "
                f"with standard deviation {deviation:g}"
            )
        return lines


@dataclass(frozen=True)
class Segment:
    """The steps of one run or minimize command."""

    first: int
    last: int
    minimizing: bool
    repeat_first: bool = True

    def relaxation(self, step: int) -> float:
        return (step - self.first) * (1.0 if self.minimizing else DYNAMICS_RELAXATION)


def next_multiple(step: int, period: int) -> int:
    return (step // period + 1) * period


def backend_exit() -> None:
    """What NAMD's BackEnd::exit prints as the program ends."""
    log(
        "====================================================",
        "",
        f"WallClock: {wall_clock():f}  CPUTime: {time.process_time():f}  Memory: {memory_mb():f} MB",
        "[Partition 0][Node 0] End of program",
    )


@dataclass(frozen=True)
class Checkpoint:
    relaxation: float
    moved: int
    velocity_temperature: float
    cell: Cell


class Simulation:
    """The running system after NAMD's startup: steps, energies and output files, driven by the script."""

    def __init__(
        self,
        settings: Settings,
        config: Config,
        table: KeywordTable,
        cell: Cell,
        inputs: Inputs,
        pacer: Pacer,
        command_line: CommandLine,
    ) -> None:
        self.settings, self.config, self.table, self.cell, self.pacer = settings, config, table, cell, pacer
        self.processors, self.build = command_line.processors, command_line.build
        self.structure = inputs.structure
        self.pdb_records = inputs.pdb_records
        self.initial_positions = inputs.positions
        self.velocity_temperature = inputs.velocity_temperature
        self.model = EnergyModel(self.structure.atoms, self.structure.degrees_of_freedom, settings.seed)
        rng = random.Random(f"{settings.seed}:drift")
        self.drift = array("d", (rng.uniform(-1, 1) for _ in range(len(inputs.positions))))
        self.step = settings.first_timestep
        self.numsteps = max(settings.numsteps or 0, settings.first_timestep)  # NAMD's N
        self.at_startup = settings
        # minimization-equivalent steps of relaxation; coordinates from an earlier run are relaxed already
        self.relaxation = math.inf if settings.bincoordinates else 0.0
        self.moved = 0  # steps simulated so far, for the drift of the output coordinates
        self.titles_due = True
        self.timing = Timing()
        self.dcd: DcdWriter | None = None
        self.xst = None
        self.saved: Checkpoint | None = None
        self.energy_labels, self.energy_values = "", ""  # the last ENERGY output, for the script's callback

    # --- script commands

    def run(self, steps: int, norepeat: bool, announce: bool = True) -> None:
        if self.settings.minimization:
            raise TclCommandError("run called with minimization enabled; use minimize command instead")
        self.start_command(announce, f"Running for {steps} steps" + (" without repeating first step" * norepeat))
        self.run_segment(Segment(self.step, self.step + steps, minimizing=False, repeat_first=not norepeat))

    def minimize(self, steps: int, announce: bool = True) -> None:
        self.start_command(announce, f"Minimizing for {steps} steps")
        self.run_segment(Segment(self.step, self.step + steps, minimizing=True))

    def start_command(self, announce: bool, what: str) -> None:
        if not announce:  # NAMD's own run of numsteps at the end of a script prints nothing
            return
        if self.numsteps != self.step:
            log(f"TCL: Original numsteps {self.numsteps} will be ignored.")
        log(f"TCL: {what}")

    def reinitvels(self, temperature: float) -> None:
        self.velocity_temperature = temperature
        log(f"REINITIALIZING VELOCITIES AT STEP {self.step} TO {num(self.velocity_temperature)} KELVIN.")

    def rescalevels(self, factor: float) -> None:
        self.velocity_temperature *= factor * factor
        log(f"RESCALING VELOCITIES AT STEP {self.step} BY {num(factor)}")

    def checkpoint(self) -> None:
        log(f"CHECKPOINTING POSITIONS AT STEP {self.step}")
        self.saved = Checkpoint(self.relaxation, self.moved, self.velocity_temperature, self.cell)

    def revert(self) -> None:
        log(f"REVERTING POSITIONS AT STEP {self.step}")
        if self.saved is None:
            raise FatalError("Unable to revert, checkpoint was never called!", locate=True)
        saved = self.saved
        self.relaxation, self.moved, self.velocity_temperature, self.cell = (
            saved.relaxation,
            saved.moved,
            saved.velocity_temperature,
            saved.cell,
        )

    def parameter(self, keyword: str) -> str:
        """A parameter's value, as `keyword` alone asks for it in a script after startup."""
        value = self.config.text(keyword.lower())
        if value is None and self.table.get(keyword) is None:
            raise TclCommandError("parameter unknown for NAMD config parameter")
        return value or ""

    def set_parameter(self, keyword: str, value: str, where: str) -> None:
        """SimParameters::scriptSet: the few parameters a script may change once the system is built."""
        log(f"TCL: Setting parameter {keyword} to {value}")
        key = keyword.lower()
        failed = FatalError(f"Setting parameter {keyword} from script failed!", locate=True)
        if key not in SCRIPT_SETTABLE:
            raise failed
        self.check_script_setting(key, value)
        known = self.table.get(key)
        if known is not None:  # NAMD reads garbage as 0 with atoi/atof; the stand-in refuses it
            parsed, problems = scan_value(known, value)
            if problems or range_error(known, parsed):
                raise failed
        self.config.replace(Entry(keyword, value, where))
        read = Reader(self.config)
        settings = read_settings(read)
        if read.errors:
            raise failed
        self.settings = settings
        if key == "firsttimestep":
            self.step = self.numsteps = settings.first_timestep
        elif key == "numsteps":
            self.numsteps = settings.numsteps or 0
        elif key == "dcdfile" and self.dcd is not None:  # NAMD closes the trajectory and starts a new one
            self.dcd.close()
            self.dcd = None

    def check_script_setting(self, key: str, value: str) -> None:
        """The settings scriptSet itself refuses, with its words."""
        startup = self.at_startup
        turned_on = atobool(value) == 1
        if key == "langevin" and turned_on and not startup.langevin:
            raise FatalError("Langevin must be enabled at startup to disable and re-enable in script.", locate=True)
        if key == "alch" and turned_on and not startup.features.alch:
            raise FatalError("Alchemy must be enabled at startup to disable and re-enable in script.", locate=True)
        if key in ("alchlambda", "alchlambda2"):
            match = C_FLOAT.match(value)
            if not match or not 0.0 <= float(match.group(1)) <= 1.0:
                raise FatalError("Alchemical lambda values should be in the range [0.0, 1.0]", locate=True)
        if key == "fixedatoms":
            if not startup.features.fixed_atoms:
                raise FatalError("FixedAtoms may not be enabled in a script.", locate=True)
            if atobool(self.config.text("fixedatomsforces") or "off") != 1:
                raise FatalError("To use fixedAtoms in script first use fixedAtomsForces yes.", locate=True)
        if key in ("mgridforcescale", "mgridforcevoff"):
            raise FatalError(f"Can't yet modify {key} in a script", locate=True)

    # --- stepping

    def run_segment(self, segment: Segment) -> None:
        self.timing.begin(segment.first)
        self.pacer.begin(segment.first)
        self.titles_due = True
        step = segment.first
        self.visit(segment, step)
        while step < segment.last:
            step = self.next_step(segment, step)
            # exact pacing where a TIMING or benchmark line reports it, chunked sleeps elsewhere
            timing = self.settings.output_timing
            timed = (timing and step % timing == 0) or self.benchmark_phase(segment, step)
            self.pacer.wait(step, exact=step == segment.last or bool(timed))
            self.visit(segment, step)
        self.relaxation += segment.relaxation(segment.last)
        self.moved += segment.last - segment.first
        self.step = self.numsteps = segment.last  # NAMD sets numsteps, then firsttimestep, to the last step

    def next_step(self, segment: Segment, step: int) -> int:
        """The next step with something to print or write."""
        s = self.settings
        if segment.minimizing:  # the minimizer reports on every step
            return step + 1
        periods = (s.output_energies, s.output_timing, s.output_pressure, s.restart_freq, s.dcd_freq, s.xst_freq)
        steps = [segment.last, *(next_multiple(step, period) for period in periods if period)]
        benchmark = next_multiple(step - segment.first, s.first_ldb_step)
        if benchmark < BENCHMARK_PHASES * s.first_ldb_step:  # the speed reports end after the ninth
            steps.append(segment.first + benchmark)
        return min(steps)

    def benchmark_phase(self, segment: Segment, step: int) -> int:
        """Which of NAMD's speed reports (1 to 9) falls on this step; 0 for none."""
        phase, rest = divmod(step - segment.first, self.settings.first_ldb_step)
        return phase if rest == 0 and 0 < phase < BENCHMARK_PHASES else 0

    def visit(self, segment: Segment, step: int) -> None:
        """Everything NAMD prints or writes at this step, in NAMD's order."""
        s = self.settings
        later = step > segment.first
        computed = later or segment.repeat_first  # `run norepeat` does not evaluate its first step again
        # NAMD prints the pressure on every minimizer step
        if computed and s.output_pressure and (segment.minimizing or step % s.output_pressure == 0):
            log(*self.pressure_lines(segment, step))
        if phase := self.benchmark_phase(segment, step):
            log(self.timing.benchmark_line(phase, self.processors, s.first_ldb_step, s.timestep))
            # The next window is paced from this report, so steps that ran late (a busy machine) are not made up
            # by faster ones that would report a speed above the one asked for.
            self.pacer.begin(step)
        if later and s.output_timing and step % s.output_timing == 0:
            printed = step >= segment.first + s.output_timing
            performance = s.output_performance and self.build.is_namd3  # PERFORMANCE: lines are new in NAMD 3
            log(*self.timing.lines(step, printed, segment.last, s.timestep, performance))
        if step % s.output_energies == 0 and computed:
            self.print_energies(segment, step)
        if segment.minimizing:
            log(*self.minimizer_lines(segment, step))
        if not later:
            return
        moved = self.moved + step - segment.first
        restart = s.restart_freq and step % s.restart_freq == 0
        if restart:
            self.write_restart_cell(step)
        if s.dcd_freq and step % s.dcd_freq == 0:
            self.write_dcd_frame(step, moved)
        if restart:
            self.write_restart_atoms(step, moved)
        if s.xst_freq and step % s.xst_freq == 0:
            self.write_xst(step)

    def target_temperature(self) -> float:
        s = self.settings
        if s.langevin:
            return s.langevin_temp
        return self.velocity_temperature if s.thermostat_temp is None else s.thermostat_temp

    def frame(self, segment: Segment, step: int, averaging: int) -> Frame:
        s = self.settings
        pressure_target = s.piston_target if s.piston else 0.0
        relaxation = self.relaxation + segment.relaxation(step)
        return Frame(
            step,
            segment.minimizing,
            relaxation,
            self.target_temperature(),
            self.cell.volume,
            s.piston,
            pressure_target,
            averaging,
        )

    def print_energies(self, segment: Segment, step: int) -> None:
        s = self.settings
        columns = len(ENERGY_TITLES) if self.cell.volume else NON_PERIODIC_COLUMNS
        if self.titles_due or step % (10 * s.output_energies) == 0:
            log(etitle_line(columns), "")
            self.titles_due = False
        values = self.model.columns(self.frame(segment, step, s.output_energies))
        log(energy_line(step, values), "")
        self.energy_labels = " ".join(["TS", *ENERGY_TITLES[:columns]])
        self.energy_values = " ".join([str(step), *(f"{value:.4f}" for value in values)])

    def pressure_lines(self, segment: Segment, step: int) -> list[str]:
        """PRESSURE: and GPRESSURE: tensors, then their averages since the last output when that spans steps."""
        averaged = 1 if segment.minimizing else min(self.settings.output_pressure, step - segment.first)
        labels = ("PRESSURE", "GPRESSURE", "PRESSAVG", "GPRESSAVG") if averaged > 1 else ("PRESSURE", "GPRESSURE")
        if not self.cell.volume:  # without a periodic cell NAMD has no pressure to report
            return [f"{label}: {step} {' '.join(['0'] * 9)}" for label in labels]
        values = self.model.columns(self.frame(segment, step, max(1, averaged)))[PRESSURE_COLUMN:]
        scalars = dict(zip(("PRESSURE", "GPRESSURE", "VOLUME", "PRESSAVG", "GPRESSAVG"), values, strict=True))
        tensors = {label: self.model.pressure_tensor(scalars[label], step, label) for label in labels}
        return [f"{label}: {step} {' '.join(num(value) for value in tensor)}" for label, tensor in tensors.items()]

    def minimizer_lines(self, segment: Segment, step: int) -> list[str]:
        """What NAMD's conjugate gradient minimizer reports after this step's energies (a plausible subset)."""
        if step >= segment.last:
            return []
        bad_contact_steps = BAD_CONTACT_STEPS if self.relaxation == 0 else 0  # only the unminimized input has any
        offset = step - segment.first
        if offset < bad_contact_steps:
            atoms = max(1, self.structure.atoms // 3)
            return [f"MINIMIZER SLOWLY MOVING {atoms} ATOMS WITH BAD CONTACTS DOWNHILL"]
        search, position = divmod(offset - bad_contact_steps, LINE_SEARCH_STEPS)
        gradient = self.model.gradient(self.relaxation + segment.relaxation(step))
        if position == 0:
            # NAMD restarts conjugate gradients after each of its first two line searches
            start = ("MINIMIZER STARTING" if search == 0 else "MINIMIZER RESTARTING") + " CONJUGATE GRADIENT ALGORITHM"
            reducing = f"LINE MINIMIZER REDUCING GRADIENT FROM {num(gradient)} TO {num(MIN_LINE_GOAL * gradient)}"
            return [start, reducing] if search <= 2 else [reducing]
        if position == 2:
            dx = 0.01 / math.sqrt(gradient) if gradient > 0 else 0.0
            return [
                f"LINE MINIMIZER BRACKET: DX {num(dx)} {num(dx)} DU {num(-0.5 * dx * gradient)} "
                f"{num(0.2 * dx * gradient)} DUDX {num(-gradient)} {num(-0.2 * gradient)} {num(0.3 * gradient)} "
            ]
        return []

    # --- output files

    def positions(self, moved: int) -> array:
        amplitude = DRIFT_AMPLITUDE * (1 - math.exp(-moved / DRIFT_STEPS))
        return array("d", (p + d * amplitude for p, d in zip(self.initial_positions, self.drift, strict=True)))

    def velocities(self, step: int) -> array:
        rng = random.Random(f"{self.settings.seed}:velocities:{step}")
        values = array("d")
        for mass in self.structure.masses:
            sigma = math.sqrt(BOLTZMANN * self.velocity_temperature / mass) if mass > 0 else 0.0
            values.extend((rng.gauss(0, sigma), rng.gauss(0, sigma), rng.gauss(0, sigma)))
        return values

    def write_atoms(self, path: str, vectors: array, binary: bool, backup: str, velocity: bool = False) -> None:
        keep_backup(path, backup)
        scale = PDB_VELOCITY_FACTOR if velocity else 1.0
        data = binary_vectors(vectors) if binary else pdb_text(self.pdb_records, vectors, scale)
        write_output(path, data, "binary" if binary else "text")

    def restart_base(self, step: int) -> str:
        s = self.settings
        return f"{s.restart_name}.{step}" if s.restart_save else s.restart_name

    def write_restart_cell(self, step: int) -> None:
        log(f"WRITING EXTENDED SYSTEM TO RESTART FILE AT STEP {step}")
        path = f"{self.restart_base(step)}.xsc"
        keep_backup(path, ".old")
        header = xsc_header("configuration restart", self.cell, self.settings.piston)
        write_output(path, (header + xsc_row(step, self.cell, self.settings.piston)).encode(), "text")

    def write_restart_atoms(self, step: int, moved: int) -> None:
        base, binary = self.restart_base(step), self.settings.binary_restart
        log(f"WRITING COORDINATES TO RESTART FILE AT STEP {step}")
        self.write_atoms(f"{base}.coor", self.positions(moved), binary, ".old")
        log("FINISHED WRITING RESTART COORDINATES", f"WRITING VELOCITIES TO RESTART FILE AT STEP {step}")
        self.write_atoms(f"{base}.vel", self.velocities(step), binary, ".old", velocity=True)
        log("FINISHED WRITING RESTART VELOCITIES")

    def write_dcd_frame(self, step: int, moved: int) -> None:
        s = self.settings
        if self.dcd is None:
            cell = self.cell if s.dcd_unit_cell and self.cell.periodic else None
            self.dcd = DcdWriter(s.dcd_file, self.structure.atoms, s.timestep, s.dcd_freq, cell)
        log(f"WRITING COORDINATES TO DCD FILE {self.dcd.path} AT STEP {step}")
        self.dcd.write(step, self.positions(moved))

    def write_xst(self, step: int) -> None:
        if self.xst is None:
            keep_backup(self.settings.xst_file, ".BAK")
            try:
                self.xst = open(self.settings.xst_file, "w")  # noqa: SIM115 -- appended to until close_files()
            except OSError as error:
                raise system_error(f"Unable to open text file {self.settings.xst_file}", error) from None
            self.xst.write(xsc_header("trajectory", self.cell, self.settings.piston))
        self.xst.write(xsc_row(step, self.cell, self.settings.piston))
        self.xst.flush()

    def write_outputs(self, name: str) -> None:
        """The .xsc, .coor and .vel files NAMD writes at the end, and for the `output` command, at this step."""
        s, step = self.settings, self.step
        log(f"WRITING EXTENDED SYSTEM TO OUTPUT FILE AT STEP {step}")
        keep_backup(f"{name}.xsc", ".BAK")
        header = xsc_header("configuration output", self.cell, s.piston)
        write_output(f"{name}.xsc", (header + xsc_row(step, self.cell, s.piston)).encode(), "text")
        outputs = (
            ("COORDINATES", "coor", "position", self.positions(self.moved)),
            ("VELOCITIES", "vel", "velocity", self.velocities(step)),
        )
        for kind, suffix, what, vectors in outputs:
            started = time.monotonic()
            log(f"WRITING {kind} TO OUTPUT FILE AT STEP {step}")
            self.write_atoms(f"{name}.{suffix}", vectors, s.binary_output, ".BAK", velocity=suffix == "vel")
            log(
                f"The last {what} output (seq=-2) takes {time.monotonic() - started:.3f} seconds, "
                f"{memory_mb():.3f} MB of memory in use"
            )

    def write_forces(self, name: str) -> None:
        """`output withforces`: NAMD's .force file; the stand-in computes no forces, so they are zero."""
        log(f"WRITING FORCES TO OUTPUT FILE AT STEP {self.step}")
        keep_backup(f"{name}.force", ".BAK")
        zeros = array("d", bytes(8 * 3 * self.structure.atoms))
        write_output(f"{name}.force", binary_vectors(zeros), "binary")

    def end(self) -> None:
        """The end of the script after a run: the final output files, then the trajectories are closed."""
        self.write_outputs(self.settings.output_name)
        if self.dcd is not None:
            self.dcd.close()
        if self.xst is not None:
            self.xst.close()


# ---------------------------------------------------------------------------------------- startup


def start_up(
    config: Config, table: KeywordTable, pacer: Pacer, command_line: CommandLine, implicit: bool
) -> Simulation:
    """NAMD's startup: check the config, print the parameters and read the inputs; `implicit`: no run command."""
    check = KeywordCheck(config, table)
    errors, invalid, warnings = check.problems()
    for line in warnings:
        warn(line)
    read = Reader(config)
    settings = read_settings(read)
    errors += read.errors
    if implicit and settings.numsteps is None:
        errors.append(["'numsteps' is a required configuration option", "numsteps defines:   number of timesteps"])
    if errors or invalid:
        raise FatalError(
            "ERROR(S) IN THE CONFIGURATION FILE", [line for group in [*errors, *invalid] for line in group]
        )
    cell = check_config(settings)
    print_parameters(settings, cell)
    if settings.gpu_resident and command_line.build.cuda:  # NAMD 2.14 rejected the keyword above
        info("CUDASOA integration enabled")
    info(f"Entering startup at {wall_clock():g} s, {memory_mb():g} MB of memory in use")
    inputs = load_inputs(settings)
    print_structure_summary(inputs.structure, cell)
    simulation = Simulation(settings, config, table, cell, inputs, pacer, command_line)
    info(f"Finished startup at {wall_clock():g} s, {memory_mb():g} MB of memory in use")
    return simulation


# ------------------------------------------------------------------------------------- the script

# Set up once in the interpreter. NAMD's commands are Tcl procs that hand their words, and the script
# location `info frame` gives, to ::namd::call (Python) and return its result or error: an error so
# returned reads in Tcl's errorInfo as the command's own, as for NAMD's C commands. Tcl's own `unknown`
# is kept for what its library loads on demand (namespaced names, auto_index: clock's msgcat, parray).
TCL_SETUP = r"""
fconfigure stdout -buffering line
namespace eval ::namd {}
catch {auto_load_index}
rename unknown ::namd::tcl_unknown
proc unknown args {
    set name [lindex $args 0]
    if {[string match *::* $name] || [info exists ::auto_index($name)]} {
        return [uplevel 1 [list ::namd::tcl_unknown {*}$args]]
    }
    lassign [::namd::call unknown [info frame -1] {*}$args] code result
    return -code $code $result
}
"""
COMMAND_PROC = """proc ::{name} args {{
    lassign [::namd::call {name} [info frame -1] {{*}}$args] code result
    return -code $code $result
}}"""
UNSUPPORTED_COMMANDS = frozenset(
    {
        "measure",
        "coorfile",
        "dumpbench",
        "consForceConfig",
        "reloadCharges",
        "reloadGridforceGrid",
        "updateGridScale",
        "replicaSend",
        "replicaRecv",
        "replicaAtomSendrecv",
        "replicaAtomSend",
        "replicaAtomRecv",
        "replicaDcdFile",
        "checkpointStore",
        "checkpointLoad",
        "checkpointSwap",
        "checkpointFree",
        "transmult",
        "vectrans",
        "transvec",
        "transvecinv",
        "transabout",
        "anglegrad",
        "dihedralgrad",
    }
)


@dataclass(frozen=True)
class TclFrame:
    """Where a command of the script is: its text and, for messages, '(file "job.namd" line 12)'."""

    command: str
    where: str


def tcl_int(text: str) -> int:
    if not INTEGER.fullmatch(text):
        raise TclCommandError(f'expected integer but got "{text}"')
    return int(text)


def tcl_double(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TclCommandError(f'expected floating-point number but got "{text}"') from None


def step_count(text: str) -> int:
    steps = tcl_int(text)
    if steps < 0:
        raise TclCommandError("number of steps must be non-negative")
    return steps


def no_arguments(args: list[str]) -> None:
    if args:
        raise TclCommandError("no arguments needed")


class ScriptTcl:
    """NAMD's ScriptTcl: the Tcl interpreter that runs the config, NAMD's commands in it, and the simulation."""

    def __init__(self, command_line: CommandLine, pacer: Pacer, table: KeywordTable, commands: tuple[str, ...]) -> None:
        if tkinter is None:
            raise FatalError("The NAMD stand-in reads configs with Tcl: Python's tkinter is missing (python3-tk)")
        try:
            self.tk = tkinter.Tcl().tk
        except tkinter.TclError as error:
            raise FatalError(f"The NAMD stand-in could not start Tcl: {error}") from None
        self.tk.wantobjects(False)  # every word reaches Python as the string Tcl has
        self.command_line, self.pacer, self.table = command_line, pacer, table
        self.config = Config()
        self.simulation: Simulation | None = None
        self.run_called = False
        self.callback: str | None = None
        self.on_command_line = False
        self.crash: BaseException | None = None
        self.handlers = self.command_handlers()
        self.tk.createcommand("::namd::call", self.dispatch)
        self.tk.eval(TCL_SETUP)
        for name in commands:
            if name not in ("unknown", "structure"):  # NAMD makes `structure` a command only at startup
                self.define(name)

    def define(self, name: str) -> None:
        self.tk.eval(COMMAND_PROC.format(name=name))

    def command_handlers(self) -> dict[str, object]:
        handlers = {
            "unknown": self.unknown,
            "param": self.unknown,
            "isset": self.isset,
            "istrue": self.istrue,
            "run": self.run,
            "minimize": self.minimize,
            "reinitvels": self.reinitvels,
            "rescalevels": self.rescalevels,
            "output": self.output,
            "checkpoint": self.checkpoint,
            "revert": self.revert,
            "callback": self.set_callback,
            "print": self.print,
            "exit": self.exit,
            "abort": self.abort,
            "startup": self.startup,
            "stdout": self.stdout,
            "python": self.python,
            "structure": self.structure,
            "colvarbias": self.colvarbias,
            "colvarvalue": self.colvarvalue,
            "colvarfreq": self.colvarfreq,
            "cv": self.cv,
            "move": self.move,
            "moveallby": self.moveallby,
            "reinitatoms": self.reinitatoms,
            "replicaEval": self.replica_eval,
            "replicaSendrecv": self.replica_sendrecv,
            "replicaBarrier": self.replica_nothing,
            "replicaYield": self.replica_nothing,
            "vecadd": self.vecadd,
            "vecsub": self.vecsub,
            "vecscale": self.vecscale,
            "veclength": self.veclength,
            "vecsum": self.vecsum,
            "vecmean": self.vecmean,
            "vecstddev": self.vecstddev,
            "getbond": self.getbond,
            "getangle": self.getangle,
            "getdihedral": self.getdihedral,
        }
        counts = {
            "numPes": self.command_line.processors,
            "numNodes": 1,
            "numPhysicalNodes": 1,
            "numReplicas": 1,
            "myReplica": 0,
        }
        for name, count in counts.items():
            handlers[name] = lambda _frame, args, count=count: no_arguments(args) or str(count)
        return handlers

    # --- plumbing

    def dispatch(self, name: str, frame_text: str, *args: str) -> tuple[str, str]:
        """The Python side of every NAMD command: ("ok", result) or ("error", message) for the Tcl proc."""
        frame = self.frame(frame_text)
        try:
            handler = self.handlers.get(name)
            if handler is None or name in UNSUPPORTED_COMMANDS:
                raise TclCommandError(f"{name}: not supported by the NAMD stand-in engine")
            return "ok", handler(frame, list(args)) or ""
        except TclCommandError as error:
            return "error", str(error)
        except FatalError as error:
            self.die(error, frame if error.locate else None)
        except Exception as error:  # a bug of the engine: re-raised with its traceback once Tcl has unwound
            self.crash = error
            return "error", "internal error of the NAMD stand-in engine"

    def frame(self, frame_text: str) -> TclFrame:
        words = self.tk.splitlist(frame_text)
        fields = dict(zip(words[::2], words[1::2], strict=False))
        if "file" in fields:
            where = f'(file "{os.path.relpath(fields["file"])}" line {fields.get("line", "?")})'
        else:
            where = "(command line)" if self.on_command_line else ""
        return TclFrame(fields.get("cmd", ""), where)

    def evaluate(self, script: str, *, file: bool = False) -> None:
        """Evaluate Tcl as NAMD does: a non-empty result is printed, an error is fatal with Tcl's errorInfo."""
        try:
            result = self.tk.evalfile(script) if file else self.tk.eval(script)
        except tkinter.TclError:
            if self.crash is not None:
                raise self.crash from None
            raise FatalError(self.tk.globalgetvar("errorInfo")) from None
        if self.crash is not None:
            raise self.crash
        if result:
            log(f"TCL: {result}")

    def die(self, error: FatalError, frame: TclFrame | None = None) -> None:
        """NAMD_die inside a command: the program ends here (a script's `catch` cannot stop it)."""
        if frame is not None and frame.command:
            location = f'\n    while executing\n"{frame.command}"' + (f"\n    {frame.where}" if frame.where else "")
            error = FatalError(error.message + location, error.errors)
        self.flush_tcl()
        report_fatal(error)
        os._exit(1)

    def flush_tcl(self) -> None:
        with contextlib.suppress(tkinter.TclError):
            self.tk.eval("flush stdout")
        sys.stdout.flush()

    # --- the script's life

    def preset(self, keyword: str, value: str) -> None:
        """A `--keyword value` option: NAMD evaluates it as a line of Tcl before the config file."""
        info(f"Command-line argument is --{keyword} {value}")
        self.on_command_line = True
        try:
            self.evaluate(f"{keyword} {value}")
        finally:
            self.on_command_line = False

    def load(self, path: Path) -> None:
        self.evaluate(str(path), file=True)

    def initcheck(self, implicit: bool = False) -> Simulation:
        """NAMD's startup on the first command that needs the system."""
        if self.simulation is None:
            log("TCL: Suspending until startup complete.")
            try:
                self.simulation = start_up(self.config, self.table, self.pacer, self.command_line, implicit)
            except FatalError as error:
                self.die(error)
            self.define("structure")
        return self.simulation

    def end(self) -> None:
        """The end of the config file: without a run command NAMD runs `numsteps`; then the output files."""
        self.flush_tcl()  # a `puts -nonewline` of the script comes before what the engine prints now
        if not self.run_called:
            simulation = self.initcheck(implicit=True)
            steps = max(0, simulation.numsteps - simulation.step)
            if simulation.settings.minimization:
                simulation.minimize(steps, announce=False)
            else:
                simulation.run(steps, norepeat=False, announce=False)
            self.run_called = True
            self.do_callback()
        self.simulation.end()
        backend_exit()

    def do_callback(self) -> None:
        """After each run the script's callback proc gets the labels and values of the last energies."""
        simulation = self.simulation
        if self.callback is None or simulation is None or not simulation.energy_labels:
            return
        try:
            self.tk.call(self.callback, simulation.energy_labels, simulation.energy_values)
        except tkinter.TclError:
            self.die(FatalError(self.tk.globalgetvar("errorInfo")))

    # --- keywords

    def unknown(self, frame: TclFrame, words: list[str]) -> str:
        """A command Tcl does not know: before startup a keyword for the ConfigList, after it a parameter change."""
        if self.simulation is None:
            name, value = config_setting(words)
            if not name:
                raise TclCommandError("error parsing config file")
            if value:
                self.config.add(Entry(name, value, frame.where))
                return ""
            existing = self.config.text(name.lower())
            if existing is None:
                raise TclCommandError("tried before startup to read config file parameter that was not set")
            return existing
        if len(words) not in (1, 2, 4):
            raise TclCommandError("wrong # args for NAMD config parameter")
        if len(words) == 1:
            return self.simulation.parameter(words[0])
        self.simulation.set_parameter(words[0], " ".join(words[1:]), frame.where)
        return ""

    def isset(self, _frame: TclFrame, args: list[str]) -> str:
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        if self.simulation is not None and self.table.get(args[0]) is None:
            raise TclCommandError("unknown parameter")
        return "1" if self.config.text(args[0].lower()) is not None else "0"

    def istrue(self, _frame: TclFrame, args: list[str]) -> str:
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        keyword = self.table.get(args[0])
        if self.simulation is not None and keyword is None:
            raise TclCommandError("unknown parameter")
        if self.simulation is not None and keyword.kind != "bool":
            raise TclCommandError("parameter is not boolean")
        value = self.config.text(args[0].lower())
        if value is None:
            raise TclCommandError("parameter value is not set")
        flag = atobool(value)
        if flag < 0:
            raise TclCommandError("parameter value is not boolean")
        return str(flag)

    # --- running

    def run(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if not args:
            raise TclCommandError("too few args")
        if len(args) > 2:
            raise TclCommandError("too many args")
        if len(args) == 2 and args[0] != "norepeat":
            raise TclCommandError("first arg not norepeat")
        steps = step_count(args[-1])
        simulation.run(steps, norepeat=len(args) == 2 and self.run_called)
        self.run_called = True
        self.do_callback()
        return ""

    def minimize(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        simulation.minimize(step_count(args[0]))
        self.run_called = True
        self.do_callback()
        return ""

    def reinitvels(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        simulation.reinitvels(tcl_double(args[0]))
        return ""

    def rescalevels(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        simulation.rescalevels(tcl_double(args[0]))
        return ""

    def output(self, _frame: TclFrame, args: list[str]) -> str:
        """`output [withforces|onlyforces] NAME`: the output files now, under another name."""
        simulation = self.initcheck()
        if not args:
            raise TclCommandError("too few args")
        if len(args) > 2:
            raise TclCommandError("too many args")
        if len(args) == 2 and args[0] not in ("withforces", "onlyforces"):
            raise TclCommandError("first arg not withforces or onlyforces")
        name = args[-1]
        log(f"TCL: Writing to files with basename {name}.")
        forces = len(args) == 2
        if forces and not self.run_called:
            raise FatalError("No forces to output; must call run or minimize first.", locate=True)
        if args[0] != "onlyforces":
            simulation.write_outputs(name)
        if forces:
            simulation.write_forces(name)
        return ""

    def checkpoint(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if args:
            raise TclCommandError("wrong # args")
        simulation.checkpoint()
        return ""

    def revert(self, _frame: TclFrame, args: list[str]) -> str:
        simulation = self.initcheck()
        if args:
            raise TclCommandError("wrong # args")
        simulation.revert()
        return ""

    def set_callback(self, _frame: TclFrame, args: list[str]) -> str:
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        self.callback = args[0]
        log(f"TCL: Reduction callback proc set to {self.callback}")
        return ""

    def structure(self, _frame: TclFrame, args: list[str]) -> str:
        """After startup `structure` reloads the PSF (the stand-in only checks the file)."""
        simulation = self.initcheck()
        if not args:
            return simulation.settings.structure
        if len(args) != 1 and not (len(args) == 3 and args[1] == "pdb"):
            raise TclCommandError("usage: structure <filename> [pdb] <filename>")
        log(
            f"TCL: Reloading molecular structure from file {args[0]}" + (f" and pdb file {args[2]}" if args[1:] else "")
        )
        read_psf(args[0])
        return ""

    # --- messages and the program

    def print(self, _frame: TclFrame, args: list[str]) -> str:
        log("TCL:" + "".join(f" {arg}" for arg in args))
        return ""

    def exit(self, _frame: TclFrame, args: list[str]) -> str:
        self.flush_tcl()
        log("TCL: Exiting due to exit command.")
        if self.run_called:
            self.simulation.end()
        if len(args) > 1:
            raise TclCommandError('wrong # args: should be "exit ?returnCode?"')
        status = tcl_int(args[0]) if args else 0
        backend_exit()
        self.flush_tcl()
        os._exit(status)

    def abort(self, _frame: TclFrame, args: list[str]) -> str:
        raise FatalError("TCL:" + ("".join(f" {arg}" for arg in args) if args else " abort called"), locate=True)

    def startup(self, _frame: TclFrame, args: list[str]) -> str:
        no_arguments(args)
        self.initcheck()
        return ""

    def stdout(self, _frame: TclFrame, args: list[str]) -> str:
        """`stdout FILE`: the rest of the log goes to FILE (appended), as NAMD's freopen does."""
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        log(f"TCL: redirecting stdout to file {args[0]}")
        self.flush_tcl()
        try:
            descriptor = os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as error:
            raise TclCommandError(error.strerror) from None
        os.dup2(descriptor, 1)
        os.close(descriptor)
        return ""

    def python(self, _frame: TclFrame, _args: list[str]) -> str:
        raise TclCommandError("python not enabled")

    # --- collective variables: the module is checked, not run

    def colvars_active(self) -> bool:
        return atobool(self.config.text("colvars") or "off") == 1

    def colvarbias(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) < 3 or len(args) % 2 == 0:
            raise TclCommandError("wrong # args")
        if not self.colvars_active():
            raise TclCommandError("colvars module not active")
        if args[0] == "changeconfig":
            return ""
        if args[0] == "energydiff":
            if not self.run_called:
                raise TclCommandError("energydiff requires a previous timestep")
            return "0.0"
        raise TclCommandError("unknown colvarbias operation")

    def colvarvalue(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        if not self.colvars_active():
            raise TclCommandError("colvars module not active")
        return "0.0"

    def colvarfreq(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        if not self.colvars_active():
            raise TclCommandError("colvars module not active")
        tcl_int(args[0])
        return ""

    def cv(self, _frame: TclFrame, args: list[str]) -> str:
        """Colvars' `cv` command: `config` and `configfile` are checked like colvarsConfig; the rest is accepted."""
        self.initcheck()
        if not args:
            raise TclCommandError("Missing arguments")
        if args[0] == "configfile":
            if len(args) != 2:
                raise TclCommandError('wrong # args: should be "cv configfile <file name>"')
            if not os.path.isfile(args[1]):
                raise TclCommandError(f'Error: in opening file "{args[1]}".')
            check_colvars_config(args[1])
        elif args[0] == "config" and (len(args) != 2 or not args[1].strip()):
            raise TclCommandError('wrong # args: should be "cv config <config string>"')
        return ""

    # --- atoms and replicas: accepted, with NAMD's argument checks

    def move(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) != 3:
            raise TclCommandError("wrong # args")
        atom = tcl_int(args[0])
        if args[1] not in ("to", "by"):
            raise TclCommandError("syntax is 'move <id> to|by {<x> <y> <z>}'")
        vector = self.numbers(args[2])
        if len(vector) != 3:
            raise TclCommandError("third argument not a vector")
        log(f"TCL: Moving atom {atom} {args[1]} {vec(tuple(vector))}.")
        return ""

    def moveallby(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) != 1:
            raise TclCommandError("wrong # args")
        if len(self.numbers(args[0])) != 3:
            raise TclCommandError("argument not a vector")
        return ""

    def reinitatoms(self, _frame: TclFrame, args: list[str]) -> str:
        self.initcheck()
        if len(args) > 1:
            raise TclCommandError("wrong # args")
        log("TCL: Reinitializing atom data" + (f" from files with basename {args[0]}" if args else ""))
        return ""

    def replica_nothing(self, _frame: TclFrame, _args: list[str]) -> str:
        return ""  # one replica: barriers and yields return at once

    def replica_eval(self, _frame: TclFrame, args: list[str]) -> str:
        if len(args) != 2:
            raise TclCommandError("args: dest script")
        self.check_replica(args[0])
        try:
            return self.tk.call("uplevel", "#0", args[1])
        except tkinter.TclError as error:
            raise TclCommandError(str(error)) from None

    def replica_sendrecv(self, _frame: TclFrame, args: list[str]) -> str:
        if len(args) not in (2, 3):
            raise TclCommandError("args: data dest ?source?")
        self.check_replica(args[1])
        return args[0]  # sent to, and received from, this replica itself

    def check_replica(self, text: str) -> None:
        replica = tcl_int(text)
        if replica < 0:
            raise TclCommandError("negative replica index")
        if replica > 0:
            raise TclCommandError("non-existent replica index")

    # --- NAMD's Tcl vector math (TclVec.C)

    def numbers(self, text: str) -> list[float]:
        try:
            return [tcl_double(word) for word in self.tk.splitlist(text)]
        except tkinter.TclError as error:
            raise TclCommandError(str(error)) from None

    def vectors(self, args: list[str], count: int | None = None) -> list[list[float]]:
        if count is not None and len(args) != count:
            raise TclCommandError("wrong # args")
        return [self.numbers(arg) for arg in args]

    @staticmethod
    def tcl_list(values: list[float]) -> str:
        return " ".join(repr(float(value)) for value in values)

    def vecadd(self, _frame: TclFrame, args: list[str]) -> str:
        vectors = self.vectors(args)
        if len(vectors) < 2 or len({len(vector) for vector in vectors}) != 1:
            raise TclCommandError("vecadd: two vectors don't have the same size" if vectors else "wrong # args")
        return self.tcl_list([sum(values) for values in zip(*vectors, strict=True)])

    def vecsub(self, _frame: TclFrame, args: list[str]) -> str:
        a, b = self.vectors(args, 2)
        if len(a) != len(b):
            raise TclCommandError("vecsub: two vectors don't have the same size")
        return self.tcl_list([x - y for x, y in zip(a, b, strict=True)])

    def vecscale(self, _frame: TclFrame, args: list[str]) -> str:
        a, b = self.vectors(args, 2)
        scalar, vector = (a[0], b) if len(a) == 1 else (b[0], a) if len(b) == 1 else (None, None)
        if scalar is None:
            raise TclCommandError("vecscale: one value must be a scalar")
        return self.tcl_list([scalar * value for value in vector])

    def veclength(self, _frame: TclFrame, args: list[str]) -> str:
        (vector,) = self.vectors(args, 1)
        return repr(math.sqrt(sum(value * value for value in vector)))

    def vecsum(self, _frame: TclFrame, args: list[str]) -> str:
        (vector,) = self.vectors(args, 1)
        return repr(float(sum(vector)))

    def vecmean(self, _frame: TclFrame, args: list[str]) -> str:
        (vector,) = self.vectors(args, 1)
        if not vector:
            raise TclCommandError("vecmean: vector must be of length > 0")
        return repr(sum(vector) / len(vector))

    def vecstddev(self, _frame: TclFrame, args: list[str]) -> str:
        (vector,) = self.vectors(args, 1)
        if not vector:
            raise TclCommandError("vecstddev: vector must be of length > 0")
        mean = sum(vector) / len(vector)
        return repr(math.sqrt(sum((value - mean) ** 2 for value in vector) / len(vector)))

    def points(self, args: list[str], count: int) -> list[list[float]]:
        points = self.vectors(args, count)
        if any(len(point) != 3 for point in points):
            raise TclCommandError("arguments must be 3-vectors")
        return points

    def getbond(self, _frame: TclFrame, args: list[str]) -> str:
        a, b = self.points(args, 2)
        return repr(math.dist(a, b))

    def getangle(self, _frame: TclFrame, args: list[str]) -> str:
        a, b, c = self.points(args, 3)
        u, v = [x - y for x, y in zip(a, b, strict=True)], [x - y for x, y in zip(c, b, strict=True)]
        cosine = sum(x * y for x, y in zip(u, v, strict=True)) / (math.hypot(*u) * math.hypot(*v))
        return repr(math.degrees(math.acos(max(-1.0, min(1.0, cosine)))))

    def getdihedral(self, _frame: TclFrame, args: list[str]) -> str:
        a, b, c, d = self.points(args, 4)

        def sub(p: list[float], q: list[float]) -> list[float]:
            return [x - y for x, y in zip(p, q, strict=True)]

        def cross(p: list[float], q: list[float]) -> list[float]:
            return [p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]]

        b1, b2, b3 = sub(b, a), sub(c, b), sub(d, c)
        n1, n2 = cross(b1, b2), cross(b2, b3)
        m = cross(n1, [x / math.hypot(*b2) for x in b2])
        x, y = sum(p * q for p, q in zip(n1, n2, strict=True)), sum(p * q for p, q in zip(m, n2, strict=True))
        return repr(-math.degrees(math.atan2(y, x)))


def main(argv: list[str]) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, terminate)
    try:
        command_line = parse_command_line(Path(argv[0]).name, argv[1:])
        if command_line.version:
            build = command_line.build
            log(f"NAMD {build.version} for {build.platform} (stand-in engine for tests)")
            return 0
        pacer = Pacer(steps_per_second())
        log(*banner(command_line))
        table, commands = load_keyword_table(keyword_table_path(), table_version(command_line.build))
        script = ScriptTcl(command_line, pacer, table, commands)
        for keyword, value in command_line.presets:
            script.preset(keyword, value)
        config_file = enter_config_directory(command_line.config)
        script.load(config_file)
        script.end()
    except FatalError as error:
        report_fatal(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
