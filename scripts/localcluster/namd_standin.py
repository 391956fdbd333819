#!/usr/bin/env python3
"""Stand-in NAMD engine: test equipment for the local SLURM cluster, not a simulator.

Real NAMD cannot be installed on the test machines, so the cluster's `namd2` and `namd3` wrappers run
this script. It behaves like NAMD wherever the portal can see it: the command line, the checks of the
config file and its input files, the log on stdout (banner, `Info:`, `ETITLE:`/`ENERGY:`, `TIMING:`,
`PERFORMANCE:` or `Info: Benchmark time:`, `PRESSURE:`/`GPRESSURE:`, the minimizer's `MINIMIZER ...` and
`LINE MINIMIZER ...`, `WRITING ...`, `FATAL ERROR:`), the exit status and the output files (.coor, .vel,
.xsc, .dcd, .xst and restart files). It computes no dynamics: energies are a cheap closed-form function of the step
and the seed, so the same inputs give the same ENERGY lines and the engine needs almost no CPU.

Usage, as NAMD:  namd3 +p2 [+devices 0] [--keyword value] job.namd > job.log
  Charm++ options (`+x`, `++x`) are accepted and ignored, except that `+pN` sets the processor count
  shown in the log. Like NAMD, the engine changes into the config file's directory, so relative paths
  in the config are relative to that directory.
Builds: run under a program name starting with `namd2` (a symlink to this file), it is NAMD 2.14, which
  knows no GPU-resident keywords and prints no PERFORMANCE: lines; under any other name NAMD 3.0.1.
  With `+devices` it is the CUDA build of that version; NAMD 3 then also honours `CUDASOAintegrate on`.
Speed: NAMD_STANDIN_STEPS_PER_SECOND (default 500; 0 or inf: as fast as possible). The engine sleeps
  to keep that pace, so a test can make a job last seconds or minutes.
Exit status: 0 on success, 1 after a FATAL ERROR; SIGTERM and SIGINT end it like a killed program
  (the log is line-buffered, so everything printed before is in it).

Config files: NAMD keywords (case-insensitive, `#` comments, `keyword value` or `keyword = value`),
the commands `minimize N`, `run [norepeat] N` and `reinitvels T`, and Tcl `set name value` with
`$name` substitution. Other Tcl (`source`, `proc`, `if`, `[...]`, braces, ...) is rejected.
Python 3.11 standard library only: it runs with the cluster's /usr/bin/python3.
"""

from __future__ import annotations

import math
import os
import random
import re
import resource
import shlex
import signal
import struct
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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

KNOWN_KEYWORDS = frozenset(
    word.lower()
    for word in """
    structure coordinates parameters paraTypeCharmm paraTypeXplor velocities binVelocities binCoordinates
    extendedSystem mergeCrossterms readExclusions
    outputName binaryOutput restartName restartFreq restartSave binaryRestart dcdFile dcdFreq dcdUnitCell
    velDCDfile velDCDfreq forceDCDfile forceDCDfreq outputEnergies outputMomenta outputPressure
    outputTiming outputPerformance xstFile xstFreq
    numsteps timestep firsttimestep stepspercycle nonbondedFreq fullElectFrequency MTSAlgorithm
    longSplitting molly
    temperature COMmotion zeroMomentum rescaleFreq rescaleTemp reassignFreq reassignTemp reassignIncr
    reassignHold langevin langevinDamping langevinTemp langevinHydrogen langevinFile langevinCol
    tCouple tCoupleTemp stochRescale stochRescaleTemp stochRescalePeriod
    useGroupPressure useFlexibleCell useConstantRatio useConstantArea langevinPiston langevinPistonTarget
    langevinPistonPeriod langevinPistonDecay langevinPistonTemp surfaceTensionTarget strainRate
    excludeFromPressure BerendsenPressure BerendsenPressureTarget BerendsenPressureCompressibility
    BerendsenPressureRelaxationTime BerendsenPressureFreq
    cutoff switching switchdist vdwForceSwitching exclude 1-4scaling dielectric pairlistdist
    pairlistsPerCycle pairlistShrink pairlistGrow pairlistTrigger margin hgroupCutoff splitPatch
    LJcorrection limitdist nonbondedScaling vdwGeometricSigma scnb
    PME PMETolerance PMEInterpOrder PMEGridSpacing PMEGridSizeX PMEGridSizeY PMEGridSizeZ PMEProcessors
    FFTWEstimate FFTWUseWisdom FFTWWisdomFile
    cellBasisVector1 cellBasisVector2 cellBasisVector3 cellOrigin wrapWater wrapAll wrapNearest
    rigidBonds rigidTolerance rigidIterations rigidDieOnError useSettle
    constraints consExp consRef consKFile consKCol constraintScaling selectConstraints selectConstrX
    selectConstrY selectConstrZ fixedAtoms fixedAtomsFile fixedAtomsCol fixedAtomsForces
    minimization minTinyStep minBabyStep minLineGoal velocityQuenching maximumMove
    extraBonds extraBondsFile colvars colvarsConfig colvarsInput
    GBIS solventDielectric ionConcentration alphaCutoff sasa surfaceTension
    CUDASOAintegrate GPUresident bondedCUDA usePMECUDA PMEoffload
    ldbPeriod firstLdbStep ldbUnloadZero ldbBackgroundScaling noPatchesOnZero twoAwayX twoAwayY twoAwayZ
    seed IMDon IMDport IMDfreq IMDwait
    alch alchType alchFile alchCol alchOutFile alchOutFreq alchLambda alchLambda2 alchEquilSteps
    alchVdwShiftCoeff alchElecLambdaStart alchVdwLambdaEnd alchDecouple
    SMD SMDFile SMDk SMDVel SMDDir SMDOutputFreq
    """.split()  # noqa: SIM905 -- a keyword table reads best as a list of words
)
NAMD3_ONLY_KEYWORDS = frozenset({"cudasoaintegrate", "gpuresident"})  # NAMD 2.14 has no GPU-resident mode
REPEATABLE_KEYWORDS = frozenset({"parameters", "extrabondsfile", "colvarsconfig"})
# Keywords a script may not change once the system is built ("Setting parameter ... failed!").
STARTUP_ONLY_KEYWORDS = frozenset(
    {"structure", "coordinates", "parameters", "paratypecharmm", "paratypexplor", "bincoordinates",
     "binvelocities", "velocities", "extendedsystem", "cellbasisvector1", "cellbasisvector2",
     "cellbasisvector3", "cellorigin", "pme", "seed"}
)  # fmt: skip
COMMANDS = frozenset({"run", "minimize", "reinitvels"})
IMPLICIT = "(end of config file)"  # where of the run NAMD does for `numsteps` when the script has no commands
UNSUPPORTED_TCL = frozenset(
    {"source", "proc", "if", "for", "foreach", "while", "expr", "puts", "incr", "eval", "exec", "switch",
     "global", "upvar", "array", "lappend", "append", "open", "close", "print", "exit", "callback",
     "checkpoint", "revert", "output", "reinitatoms", "rescalevels", "measure"}
)  # fmt: skip
TRUE_WORDS = frozenset({"on", "yes", "true", "1"})
FALSE_WORDS = frozenset({"off", "no", "false", "0"})
CHARM_OPTIONS_WITH_VALUE = frozenset(
    {"+p", "+ppn", "++ppn", "+devices", "+pemap", "+commap", "++p", "++n", "++np", "++nodelist", "+stacksize"}
)
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

ENERGY_TITLES = ("BOND", "ANGLE", "DIHED", "IMPRP", "ELECT", "VDW", "BOUNDARY", "MISC", "KINETIC", "TOTAL",
                 "TEMP", "POTENTIAL", "TOTAL3", "TEMPAVG", "PRESSURE", "GPRESSURE", "VOLUME", "PRESSAVG",
                 "GPRESSAVG")  # fmt: skip
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
XPLOR_STATEMENTS = {"BOND": "BONDS", "ANGL": "ANGLES", "DIHE": "DIHEDRAL", "IMPR": "IMPROPER", "NONB": "VDW",
                    "NBFI": "VDW_PAIRS"}  # fmt: skip
PARAMETER_SUMMARY = ("BONDS", "ANGLES", "DIHEDRAL", "IMPROPER", "CROSSTERM", "VDW", "VDW_PAIRS", "NBTHOLE_PAIRS")
PSF_SUMMARY = (("NBOND", "BONDS"), ("NTHETA", "ANGLES"), ("NPHI", "DIHEDRALS"), ("NIMPHI", "IMPROPERS"),
               ("NCRTERM", "CROSSTERMS"))  # fmt: skip

Vector = tuple[float, float, float]


class FatalError(Exception):
    """A NAMD_die: `errors` are printed as ERROR: lines before the FATAL ERROR: line."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class TclProblem(Exception):
    """A Tcl-level error in one line of the config file."""


# ----------------------------------------------------------------------------------------- output


def log(*lines: str) -> None:
    for line in lines:
        print(line)


def info(text: str) -> None:
    print(f"Info: {text}")


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


# ------------------------------------------------------------------------------------ config file


def tcl_failure(message: str, text: str, where: str) -> FatalError:
    """NAMD dies with Tcl's errorInfo when a config line fails."""
    return FatalError(f'{message}\n    while executing\n"{text}"\n    {where}')


@dataclass(frozen=True)
class Statement:
    keyword: str  # as written
    words: tuple[str, ...]
    text: str
    where: str  # for error messages, e.g. '(file "job.namd" line 12)'

    @property
    def key(self) -> str:
        return self.keyword.lower()

    @property
    def value(self) -> str:
        return " ".join(self.words)

    def failure(self, message: str) -> FatalError:
        return tcl_failure(message, self.text, self.where)


def split_words(text: str, variables: dict[str, str]) -> list[str]:
    """Tcl-like words of a line: double quotes group, a word starting with # starts a comment, $vars expand."""
    if text.lstrip().startswith("#"):
        return []
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.quotes = '"'
    try:
        words = list(lexer)
    except ValueError:
        raise TclProblem('missing "') from None
    comment = next((index for index, word in enumerate(words) if word.startswith("#")), len(words))
    return [VARIABLE.sub(lambda match: lookup(match, variables), word) for word in words[:comment]]


def lookup(match: re.Match[str], variables: dict[str, str]) -> str:
    name = match.group(1) or match.group(2)
    if name not in variables:
        raise TclProblem(f'can\'t read "{name}": no such variable')
    return variables[name]


def check_supported(words: list[str]) -> None:
    if words[0] in UNSUPPORTED_TCL:
        raise TclProblem(f'invalid command name "{words[0]}" (the NAMD stand-in supports no Tcl but "set")')
    if any(word.startswith("{") or "[" in word for word in words):
        raise TclProblem("the NAMD stand-in supports no Tcl braces or command substitution")


def split_assignment(words: list[str]) -> tuple[str, tuple[str, ...]]:
    """The keyword and values of `name value`, `name=value`, `name = value` and `name =value`."""
    keyword, *values = words
    if "=" in keyword:
        keyword, _, first = keyword.partition("=")
        values.insert(0, first)
    elif values and values[0].startswith("="):
        values[0] = values[0][1:]
    if not keyword:
        raise TclProblem("error parsing config file")
    return keyword, tuple(value for value in values if value)


def parse_line(text: str, where: str, variables: dict[str, str]) -> Statement | None:
    try:
        words = split_words(text, variables)
        if not words:
            return None
        if words[0] == "set":
            if len(words) != 3:
                raise TclProblem('wrong # args: should be "set varName ?newValue?"')
            variables[words[1]] = words[2]
            return None
        check_supported(words)
        keyword, values = split_assignment(words)
    except TclProblem as problem:
        raise tcl_failure(str(problem), text.strip(), where) from None
    return Statement(keyword, values, text.strip(), where)


def read_script(path: Path, presets: list[tuple[str, str]]) -> list[Statement]:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise FatalError(f"Unable to access config file {path}: {error.strerror}") from None
    lines = [(f"{keyword} {value}", "(command line)") for keyword, value in presets]
    lines += [(line, f'(file "{path}" line {number})') for number, line in enumerate(text.splitlines(), 1)]
    variables: dict[str, str] = {}
    statements: list[Statement] = []
    for line, where in lines:
        statement = parse_line(line, where, variables)
        if statement is None:
            continue
        if not statement.words and statement.key not in COMMANDS:
            # a bare keyword reads the parameter's value, which only works for one already set
            if all(earlier.key != statement.key for earlier in statements):
                raise statement.failure("tried before startup to read config file parameter that was not set")
            continue
        statements.append(statement)
    return statements


class Config:
    """Parameter values by lower-case keyword, in the order given (NAMD's ConfigList)."""

    def __init__(self, statements: list[Statement]) -> None:
        self.entries: dict[str, list[Statement]] = {}
        for statement in statements:
            self.entries.setdefault(statement.key, []).append(statement)

    def replace(self, statement: Statement) -> None:
        self.entries[statement.key] = [statement]

    def text(self, key: str) -> str | None:
        entries = self.entries.get(key)
        return entries[0].value if entries else None

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(statement.value for statement in self.entries.get(key, []))

    def name(self, key: str) -> str:
        entries = self.entries.get(key)
        return entries[0].keyword if entries else key


class Reader:
    """Typed reads of a Config; problems are collected as NAMD's ERROR: lines."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.errors: list[str] = []

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.config.text(key)
        return default if value is None else value

    def required(self, key: str, meaning: str, parent: str | None = None) -> str:
        value = self.config.text(key)
        if value is None:
            self.errors.append(f"'{key}' is a required configuration option")
            if parent:
                self.errors.append(f"  when '{parent}' is set")
            self.errors.append(f"{key} defines:   {meaning}")
        return value or ""

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.config.text(key)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS | FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        self.errors += [
            f"ParseOptions can't understand '{value}' for the",
            f" Boolean variable '{self.config.name(key)}'",
        ]
        return default

    def integer(self, key: str, default: int | None, minimum: int = 0) -> int | None:
        value = self.config.text(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append(f"Expecting only a number for '{self.config.name(key)}' input, got: {value}")
            return default
        if number < minimum:
            should = "positive" if minimum > 0 else "non-negative"
            self.errors.append(f"'{self.config.name(key)}' was set to {number} but it should be {should}")
        return number

    def number(self, key: str, default: float | None) -> float | None:
        value = self.config.text(key)
        if value is None:
            return default
        try:
            return float(value.split()[0])
        except ValueError:
            self.errors.append(f"Expecting value and optional units for option '{self.config.name(key)}'")
            return default

    def vector(self, key: str) -> Vector | None:
        value = self.config.text(key)
        if value is None:
            return None
        try:
            x, y, z = (float(part) for part in value.split())
        except ValueError:
            self.errors += [
                f"Could not translate the value '{value}'",
                f"  into a Vector for the option '{self.config.name(key)}'",
            ]
            return None
        return x, y, z


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
    extra_bonds_files: tuple[str, ...]
    constraint_files: tuple[str, ...]
    colvars_files: tuple[str, ...]


def read_required_inputs(read: Reader) -> dict[str, str]:
    return {
        "structure": read.required("structure", "initial PSF structure file"),
        "coordinates": read.required("coordinates", "initial PDB coordinate file"),
        "output_name": read.required("outputname", "prefix for the final PDB position and velocity filenames"),
    }


def read_conditional_files(read: Reader) -> dict[str, tuple[str, ...]]:
    """Files NAMD needs only when a feature is on."""
    files: dict[str, tuple[str, ...]] = {"extra_bonds_files": (), "constraint_files": (), "colvars_files": ()}
    if read.flag("extrabonds"):
        read.required("extrabondsfile", "file with extra bonded forces", "extraBonds")
        files["extra_bonds_files"] = read.config.texts("extrabondsfile")
    if read.flag("constraints"):
        files["constraint_files"] = (
            read.required("consref", "PDB file with reference coordinates", "constraints"),
            read.required("conskfile", "PDB file with force constants", "constraints"),
        )
    if read.flag("colvars"):
        read.required("colvarsconfig", "configuration file for the collective variables module", "colvars")
        files["colvars_files"] = read.config.texts("colvarsconfig")
    return files


def read_dynamics(read: Reader) -> dict[str, object]:
    langevin, piston = read.flag("langevin"), read.flag("langevinpiston")
    if langevin:
        read.required("langevintemp", "temperature for Langevin dynamics", "langevin")
    if piston:
        for key in ("langevinpistontarget", "langevinpistonperiod", "langevinpistondecay", "langevinpistontemp"):
            read.required(key, "Langevin piston pressure control parameter", "langevinPiston")
    return {
        "temperature": read.number("temperature", None),
        "minimization": read.flag("minimization"),
        "langevin": langevin,
        "langevin_temp": read.number("langevintemp", 0.0),
        "langevin_damping": read.number("langevindamping", 0.0),
        "piston": piston,
        "piston_target": read.number("langevinpistontarget", 1.01325),
        "piston_period": read.number("langevinpistonperiod", 100.0),
        "piston_decay": read.number("langevinpistondecay", 50.0),
        "piston_temp": read.number("langevinpistontemp", 0.0),
    }


def read_outputs(read: Reader, output_name: str) -> dict[str, object]:
    output_energies = read.integer("outputenergies", 1, minimum=1)
    steps_per_cycle = read.integer("stepspercycle", 20, minimum=1)
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
        "output_timing": read.integer("outputtiming", default_timing, minimum=1),
        "output_performance": read.flag("outputperformance", True),
        "output_pressure": read.integer("outputpressure", 0),
        "first_ldb_step": read.integer("firstldbstep", 5 * steps_per_cycle, minimum=1),
        "steps_per_cycle": steps_per_cycle,
    }


def read_settings(read: Reader) -> Settings:
    """Settings from a config; problems are left in `read.errors`."""
    inputs = read_required_inputs(read)
    read.required("parameters", "parameter file")
    read.required("exclude", "electrostatic and van der Waals exclusion policy")
    cutoff = read.number("cutoff", None)
    if cutoff is None:
        read.required("cutoff", "local electrostatic and Vdw distance")
        cutoff = 0.0
    return Settings(
        **inputs,
        **read_conditional_files(read),
        **read_dynamics(read),
        **read_outputs(read, inputs["output_name"]),
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


def duplicate_errors(statements: list[Statement]) -> list[str]:
    counts = Counter(statement.key for statement in statements)
    errors: list[str] = []
    for statement in statements:
        if counts[statement.key] > 1 and statement.key not in REPEATABLE_KEYWORDS:
            errors += [f"Multiple definitions of '{statement.keyword}'", "  in the configuration file are not allowed"]
            counts[statement.key] = 0
    return errors


def invalid_keyword_errors(statements: list[Statement], build: Build) -> list[str]:
    known = KNOWN_KEYWORDS if build.is_namd3 else KNOWN_KEYWORDS - NAMD3_ONLY_KEYWORDS
    invalid = dict.fromkeys(statement.keyword for statement in statements if statement.key not in known | COMMANDS)
    if not invalid:
        return []
    return [
        "The following variables were set in the",
        "configuration file but are NOT VALID",
        *(f"   {keyword}" for keyword in invalid),
    ]


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
    counts: Counter[str] = Counter()
    section, continued = None, False
    for raw in text.splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line or line.startswith("*"):
            continue
        if continued:  # a section header continued with a trailing "-"
            continued = line.endswith("-")
            continue
        head = line.split()[0].upper()
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


def check_feature_files(settings: Settings) -> None:
    for path in settings.extra_bonds_files:
        if not os.path.isfile(path):
            raise FatalError(f"UNABLE TO OPEN EXTRA BONDS FILE {path}")
    for path in settings.constraint_files:
        read_pdb(path)
    for path in settings.colvars_files:
        if not os.path.isfile(path):
            raise FatalError(f"Unable to open text file {path}")


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
    check_feature_files(settings)
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
        self.handle = open(self.path, "w+b")  # noqa: SIM115 -- stays open across frames, closed in close()
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
        self.samples: list[float] = []

    def begin(self, step: int) -> None:
        self.step, self.wall, self.cpu = step, wall_clock(), time.process_time()
        self.benchmark_wall = self.wall
        self.samples = []

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
        self.samples.append(wall_per_step)
        if performance:
            mean = sum(self.samples) / len(self.samples)
            deviation = math.sqrt(sum((sample - mean) ** 2 for sample in self.samples) / len(self.samples))
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


def step_count(statement: Statement, text: str) -> int:
    try:
        steps = int(text)
    except ValueError:
        raise statement.failure(f'expected integer but got "{text}"') from None
    if steps < 0:
        raise statement.failure("number of steps must be non-negative")
    return steps


class Simulation:
    def __init__(
        self, settings: Settings, config: Config, cell: Cell, inputs: Inputs, pacer: Pacer, command_line: CommandLine
    ) -> None:
        self.settings, self.config, self.cell, self.pacer = settings, config, cell, pacer
        self.processors, self.build = command_line.processors, command_line.build
        self.structure = inputs.structure
        self.pdb_records = inputs.pdb_records
        self.initial_positions = inputs.positions
        self.velocity_temperature = inputs.velocity_temperature
        self.model = EnergyModel(self.structure.atoms, self.structure.degrees_of_freedom, settings.seed)
        rng = random.Random(f"{settings.seed}:drift")
        self.drift = array("d", (rng.uniform(-1, 1) for _ in range(len(inputs.positions))))
        self.step = settings.first_timestep
        # minimization-equivalent steps of relaxation; coordinates from an earlier run are relaxed already
        self.relaxation = math.inf if settings.bincoordinates else 0.0
        self.moved = 0  # steps simulated so far, for the drift of the output coordinates
        self.ran = False
        self.titles_due = True
        self.timing = Timing()
        self.dcd: DcdWriter | None = None
        self.xst = None

    # --- script commands

    def execute(self, statement: Statement) -> None:
        commands = {"run": self.run, "minimize": self.minimize, "reinitvels": self.reinitvels}
        commands.get(statement.key, self.set_parameter)(statement)

    def run(self, statement: Statement) -> None:
        words = statement.words
        if not words:
            raise statement.failure("too few args")
        if len(words) > 2:
            raise statement.failure("too many args")
        if len(words) == 2 and words[0] != "norepeat":
            raise statement.failure("first arg not norepeat")
        if self.settings.minimization:
            raise statement.failure("run called with minimization enabled; use minimize command instead")
        steps = step_count(statement, words[-1])
        norepeat = len(words) == 2 and self.ran
        if statement.where != IMPLICIT:
            log(f"TCL: Running for {steps} steps" + (" without repeating first step" if norepeat else ""))
        self.run_segment(Segment(self.step, self.step + steps, minimizing=False, repeat_first=not norepeat))
        self.ran = True

    def minimize(self, statement: Statement) -> None:
        if len(statement.words) != 1:
            raise statement.failure("wrong # args")
        steps = step_count(statement, statement.words[0])
        if statement.where != IMPLICIT:
            log(f"TCL: Minimizing for {steps} steps")
        self.run_segment(Segment(self.step, self.step + steps, minimizing=True))

    def reinitvels(self, statement: Statement) -> None:
        if len(statement.words) != 1:
            raise statement.failure("wrong # args")
        try:
            self.velocity_temperature = float(statement.words[0])
        except ValueError:
            raise statement.failure(f'expected floating-point number but got "{statement.words[0]}"') from None
        log(f"REINITIALIZING VELOCITIES AT STEP {self.step} TO {num(self.velocity_temperature)} KELVIN.")

    def set_parameter(self, statement: Statement) -> None:
        failed = FatalError(f"Setting parameter {statement.keyword} from script failed!")
        if statement.key in STARTUP_ONLY_KEYWORDS:
            raise failed
        log(f"TCL: Setting parameter {statement.keyword} to {statement.value}")
        self.config.replace(statement)
        read = Reader(self.config)
        settings = read_settings(read)
        if read.errors:
            raise failed
        self.settings = settings
        if statement.key == "firsttimestep":
            self.step = settings.first_timestep

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
            timed = step % self.settings.output_timing == 0 or self.benchmark_phase(segment, step)
            self.pacer.wait(step, exact=step == segment.last or bool(timed))
            self.visit(segment, step)
        self.relaxation += segment.relaxation(segment.last)
        self.moved += segment.last - segment.first
        self.step = segment.last

    def next_step(self, segment: Segment, step: int) -> int:
        """The next step with something to print or write."""
        s = self.settings
        if segment.minimizing:  # the minimizer reports on every step
            return step + 1
        periods = (s.output_energies, s.output_timing, s.output_pressure, s.restart_freq, s.dcd_freq, s.xst_freq)
        benchmark = segment.first + next_multiple(step - segment.first, s.first_ldb_step)
        return min([segment.last, benchmark, *(next_multiple(step, period) for period in periods if period)])

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
        if later and step % s.output_timing == 0:
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
        return self.settings.langevin_temp if self.settings.langevin else self.velocity_temperature

    def frame(self, segment: Segment, step: int, averaging: int) -> Frame:
        s = self.settings
        pressure_target = s.piston_target if s.piston else 0.0
        relaxation = self.relaxation + segment.relaxation(step)
        return Frame(step, segment.minimizing, relaxation, self.target_temperature(), self.cell.volume, s.piston,
                     pressure_target, averaging)  # fmt: skip

    def print_energies(self, segment: Segment, step: int) -> None:
        s = self.settings
        columns = len(ENERGY_TITLES) if self.cell.volume else NON_PERIODIC_COLUMNS
        if self.titles_due or step % (10 * s.output_energies) == 0:
            log(etitle_line(columns), "")
            self.titles_due = False
        log(energy_line(step, self.model.columns(self.frame(segment, step, s.output_energies))), "")

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
        Path(path).write_bytes(data)

    def restart_base(self, step: int) -> str:
        s = self.settings
        return f"{s.restart_name}.{step}" if s.restart_save else s.restart_name

    def write_restart_cell(self, step: int) -> None:
        log(f"WRITING EXTENDED SYSTEM TO RESTART FILE AT STEP {step}")
        path = f"{self.restart_base(step)}.xsc"
        keep_backup(path, ".old")
        header = xsc_header("configuration restart", self.cell, self.settings.piston)
        Path(path).write_text(header + xsc_row(step, self.cell, self.settings.piston))

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
            self.xst = open(self.settings.xst_file, "w")  # noqa: SIM115 -- appended to until finish()
            self.xst.write(xsc_header("trajectory", self.cell, self.settings.piston))
        self.xst.write(xsc_row(step, self.cell, self.settings.piston))
        self.xst.flush()

    def finish(self) -> None:
        s, step = self.settings, self.step
        log(f"WRITING EXTENDED SYSTEM TO OUTPUT FILE AT STEP {step}")
        keep_backup(f"{s.output_name}.xsc", ".BAK")
        header = xsc_header("configuration output", self.cell, s.piston)
        Path(f"{s.output_name}.xsc").write_text(header + xsc_row(step, self.cell, s.piston))
        outputs = (("COORDINATES", "coor", "position", self.positions(self.moved)),
                   ("VELOCITIES", "vel", "velocity", self.velocities(step)))  # fmt: skip
        for kind, suffix, what, vectors in outputs:
            started = time.monotonic()
            log(f"WRITING {kind} TO OUTPUT FILE AT STEP {step}")
            self.write_atoms(f"{s.output_name}.{suffix}", vectors, s.binary_output, ".BAK", velocity=suffix == "vel")
            log(
                f"The last {what} output (seq=-2) takes {time.monotonic() - started:.3f} seconds, "
                f"{memory_mb():.3f} MB of memory in use"
            )
        if self.dcd is not None:
            self.dcd.close()
        if self.xst is not None:
            self.xst.close()
        log(
            "====================================================",
            "",
            f"WallClock: {wall_clock():f}  CPUTime: {time.process_time():f}  Memory: {memory_mb():f} MB",
            "[Partition 0][Node 0] End of program",
        )


# ---------------------------------------------------------------------------------------- startup


def implicit_command(settings: Settings) -> Statement:
    """Without run or minimize commands NAMD runs (or minimizes) up to step `numsteps`, printing no TCL: line."""
    keyword = "minimize" if settings.minimization else "run"
    steps = max(0, (settings.numsteps or 0) - settings.first_timestep)
    return Statement(keyword, (str(steps),), f"numsteps {settings.numsteps}", IMPLICIT)


def start_up(
    statements: list[Statement], pacer: Pacer, command_line: CommandLine
) -> tuple[Simulation, list[Statement]]:
    """Check the config and read the inputs as NAMD does before its first run; returns the script's actions."""
    first_command = next((i for i, s in enumerate(statements) if s.key in COMMANDS), len(statements))
    startup, actions = statements[:first_command], statements[first_command:]
    log("TCL: Suspending until startup complete.")
    config = Config(startup)
    read = Reader(config)
    read.errors += duplicate_errors(startup)
    settings = read_settings(read)
    read.errors += invalid_keyword_errors(statements, command_line.build)
    if not actions and settings.numsteps is None:
        read.errors += ["'numsteps' is a required configuration option", "numsteps defines:   number of timesteps"]
    if read.errors:
        raise FatalError("ERROR(S) IN THE CONFIGURATION FILE", read.errors)
    cell = check_config(settings)
    print_parameters(settings, cell)
    if settings.gpu_resident and command_line.build.cuda:  # NAMD 2.14 rejected the keyword above
        info("CUDASOA integration enabled")
    info(f"Entering startup at {wall_clock():g} s, {memory_mb():g} MB of memory in use")
    inputs = load_inputs(settings)
    print_structure_summary(inputs.structure, cell)
    simulation = Simulation(settings, config, cell, inputs, pacer, command_line)
    info(f"Finished startup at {wall_clock():g} s, {memory_mb():g} MB of memory in use")
    return simulation, actions or [implicit_command(settings)]


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
        config_file = enter_config_directory(command_line.config)
        simulation, actions = start_up(read_script(config_file, command_line.presets), pacer, command_line)
        for statement in actions:
            simulation.execute(statement)
        simulation.finish()
    except FatalError as error:
        report_fatal(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
