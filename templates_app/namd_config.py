"""The NAMD config checker: what the portal knows of NAMD's config language, as pure functions.

Checks a rendered config before anything reaches a cluster: known keywords (case-insensitive),
values of the right kind (numbers, on/off, three-number vectors), the required keywords, a periodic
cell or an extended system when `PME on`, and something to run (`minimize`/`run`/`numsteps`). Tcl
is not part of the portal's subset. Every problem names its line. Knows nothing of Django or SSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    FILE = "file"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    WORD = "word"
    VECTOR = "vector"
    STEPS = "steps"  # minimize / run: an integer command, may repeat


def _table(kind: Kind, names: str) -> dict[str, Kind]:
    return {name.lower(): kind for name in names.split()}


KEYWORDS: dict[str, Kind] = {
    **_table(
        Kind.FILE,
        "structure coordinates parameters bincoordinates binvelocities velocities extendedSystem "
        "extraBondsFile consref conskfile fixedAtomsFile colvarsConfig parmfile ambercoor",
    ),
    **_table(
        Kind.INT,
        "outputEnergies outputTiming outputPressure restartfreq dcdfreq veldcdfreq xstFreq "
        "firsttimestep numsteps stepspercycle nonbondedFreq fullElectFrequency seed PMEGridSizeX "
        "PMEGridSizeY PMEGridSizeZ PMEInterpOrder rigidIterations minTinyStep minBabyStep",
    ),
    **_table(
        Kind.FLOAT,
        "temperature timestep cutoff switchdist pairlistdist 1-4scaling dielectric "
        "langevinDamping langevinTemp langevinPistonTarget langevinPistonPeriod langevinPistonDecay "
        "langevinPistonTemp PMEGridSpacing rigidTolerance margin constraintScaling reinitvels "
        "alphaCutoff ionConcentration solventDielectric minLineGoal",
    ),
    **_table(
        Kind.BOOL,
        "paraTypeCharmm paraTypeXplor amber switching PME wrapAll wrapWater wrapNearest langevin "
        "langevinHydrogen langevinPiston useGroupPressure useFlexibleCell useConstantArea useConstantRatio "
        "binaryOutput binaryRestart dcdUnitCell extraBonds constraints fixedAtoms colvars gbis "
        "COMmotion zeroMomentum LJcorrection vdwForceSwitching CUDASOAintegrate GPUresident "
        "readexclusions mergeCrossterms",
    ),
    **_table(Kind.WORD, "outputName restartname exclude rigidBonds conskcol fixedAtomsCol"),
    **_table(Kind.VECTOR, "cellBasisVector1 cellBasisVector2 cellBasisVector3 cellOrigin"),
    **_table(Kind.STEPS, "minimize run"),
}
REPEATABLE = frozenset({"parameters", "minimize", "run", "extrabondsfile"})
EXCLUDE_VALUES = frozenset({"none", "1-2", "1-3", "1-4", "scaled1-4"})
TRUE_WORDS, FALSE_WORDS = frozenset({"on", "yes", "true"}), frozenset({"off", "no", "false"})
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
INT_RE, FLOAT_RE = re.compile(r"^[-+]?\d+$"), re.compile(f"^{NUMBER}$")
VECTOR_RE = re.compile(rf"^{NUMBER}\s+{NUMBER}\s+{NUMBER}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_.+/-]+$")
WORD_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class ConfigProblem:
    code: str
    message: str
    line: int | None = None  # 1-based, None for the config as a whole

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class ConfigLine:
    line: int
    keyword: str  # lower-case
    value: str


def parse_lines(text: str) -> tuple[list[ConfigLine], list[ConfigProblem]]:
    """Keyword lines of a config (comments and blank lines dropped) and the lines that are not NAMD."""
    lines, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        keyword, _, value = content.partition(" ")
        value = value.strip().removeprefix("=").strip()
        lowered = keyword.lower()
        if any(mark in content for mark in ("$", "[", "{", "}", ";")) or lowered in {"set", "source", "proc", "if"}:
            problems.append(ConfigProblem("NAMD_TCL_UNSUPPORTED", f"'{keyword}': Tcl is not supported here", number))
        elif lowered not in KEYWORDS:
            problems.append(ConfigProblem("NAMD_UNKNOWN_KEYWORD", f"'{keyword}' is not a NAMD keyword", number))
        elif not value:
            problems.append(ConfigProblem("NAMD_VALUE_MISSING", f"'{keyword}' needs a value", number))
        else:
            lines.append(ConfigLine(number, lowered, value))
    return lines, problems


def _value_problem(entry: ConfigLine) -> ConfigProblem | None:
    kind, value, keyword = KEYWORDS[entry.keyword], entry.value, entry.keyword

    def bad(code: str, expected: str) -> ConfigProblem:
        return ConfigProblem(code, f"'{keyword}' takes {expected}, not '{value[:40]}'", entry.line)

    if kind in (Kind.INT, Kind.STEPS) and not INT_RE.fullmatch(value):
        return bad("NAMD_BAD_NUMBER", "a whole number")
    if kind is Kind.STEPS and int(value) < 0:
        return bad("NAMD_BAD_NUMBER", "a number of steps of at least 0")
    if kind is Kind.FLOAT and not FLOAT_RE.fullmatch(value):
        return bad("NAMD_BAD_NUMBER", "a number")
    if kind is Kind.BOOL and value.lower() not in TRUE_WORDS | FALSE_WORDS:
        return bad("NAMD_BAD_BOOLEAN", "on or off")
    if kind is Kind.VECTOR and not VECTOR_RE.fullmatch(value):
        return bad("NAMD_BAD_VECTOR", "three numbers")
    if kind is Kind.FILE and not FILE_RE.fullmatch(value):
        return bad("NAMD_BAD_FILE_NAME", "a file name of letters, digits and _.+-/")
    if kind is Kind.WORD and not WORD_RE.fullmatch(value):
        return bad("NAMD_BAD_VALUE", "one word")
    if keyword == "exclude" and value.lower() not in EXCLUDE_VALUES:
        return bad("NAMD_BAD_VALUE", "one of " + ", ".join(sorted(EXCLUDE_VALUES)))
    return None


def _is_on(values: dict[str, list[ConfigLine]], keyword: str) -> bool:
    found = values.get(keyword.lower())
    return bool(found) and found[-1].value.lower() in TRUE_WORDS


def check_namd_config(text: str) -> list[ConfigProblem]:
    """Every problem of a NAMD config, in line order, config-wide problems last."""
    lines, problems = parse_lines(text)
    values: dict[str, list[ConfigLine]] = {}
    for entry in lines:
        if entry.keyword in values and entry.keyword not in REPEATABLE:
            problems.append(ConfigProblem("NAMD_DUPLICATE_KEYWORD", f"'{entry.keyword}' is set twice", entry.line))
        values.setdefault(entry.keyword, []).append(entry)
        if (problem := _value_problem(entry)) is not None:
            problems.append(problem)
    problems.sort(key=lambda problem: problem.line or 0)
    for keyword in ("structure", "coordinates", "outputname", "exclude", "cutoff"):
        if keyword not in values:
            problems.append(ConfigProblem("NAMD_MISSING_KEYWORD", f"the config needs '{keyword}'"))
    if "parameters" not in values and not _is_on(values, "amber"):
        problems.append(ConfigProblem("NAMD_MISSING_KEYWORD", "the config needs at least one 'parameters' file"))
    if "temperature" not in values and "binvelocities" not in values:
        problems.append(ConfigProblem("NAMD_MISSING_KEYWORD", "the config needs 'temperature' or 'binvelocities'"))
    if "temperature" in values and "binvelocities" in values:
        problems.append(ConfigProblem("NAMD_CONFLICT", "'temperature' and 'binvelocities' exclude each other"))
    has_cell = all(f"cellbasisvector{i}" in values for i in (1, 2, 3))
    if _is_on(values, "PME") and not has_cell and "extendedsystem" not in values:
        problems.append(ConfigProblem("NAMD_PME_NEEDS_CELL", "'PME on' needs cellBasisVector1-3 or an extendedSystem"))
    if not any(keyword in values for keyword in ("minimize", "run", "numsteps")):
        problems.append(ConfigProblem("NAMD_NOTHING_TO_RUN", "the config has no 'minimize' or 'run'"))
    return problems


def input_files(text: str) -> list[tuple[str, str]]:
    """(keyword, file name) for every input file the config reads, in order."""
    lines, _ = parse_lines(text)
    return [(entry.keyword, entry.value) for entry in lines if KEYWORDS[entry.keyword] is Kind.FILE]
