#!/usr/bin/env python3
"""A stand-in for NAMD on the local test cluster (test equipment, not part of the portal).

Real NAMD is in no registry these machines reach. This program behaves like NAMD wherever the
portal can see it: the command line (`namd2 +p2 job.namd`, `namd3 +p1 +devices 0 job.namd`), the
config file (case-insensitive keywords, `#` comments, unknown keywords and missing files are
FATAL ERRORs with a non-zero exit), the log on stdout (Info:, ETITLE:/ENERGY:, TIMING:, WRITING
..., WallClock:) and the output files (`<outputName>.coor/.vel` in NAMD's binary form, `.xsc`,
`.dcd`, `.restart.*`). Energies are a closed-form function of the step and the seed: falling
during minimization, fluctuating around equilibrium during dynamics, identical for a seed.

Speed: NAMD_STANDIN_STEPS_PER_SECOND (default 500; 0 or "inf" = as fast as possible). Python
standard library only: it runs with the cluster's /usr/bin/python3.
"""

from __future__ import annotations

import math
import os
import random
import resource
import signal
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "3.0.1 (stand-in)"
BOLTZMANN = 0.0019872041  # kcal/mol/K
DEFAULT_SEED = 4242
DEFAULT_STEPS_PER_SECOND = 500.0

KNOWN_KEYWORDS = {
    keyword.lower()
    for keyword in """
    structure coordinates parameters paraTypeCharmm paraTypeXplor amber parmfile ambercoor readexclusions
    scnb temperature timestep rigidBonds rigidTolerance rigidIterations nonbondedFreq fullElectFrequency
    stepspercycle pairlistdist cutoff switching switchdist exclude 1-4scaling dielectric outputName
    outputEnergies outputTiming outputPressure outputMomenta restartfreq restartname restartsave dcdfreq
    dcdfile dcdUnitCell veldcdfreq xstFreq xstFile binaryOutput binaryRestart bincoordinates binvelocities
    velocities extendedSystem extraBonds extraBondsFile PME PMEGridSpacing PMEGridSizeX PMEGridSizeY
    PMEGridSizeZ cellBasisVector1 cellBasisVector2 cellBasisVector3 cellOrigin wrapAll wrapWater wrapNearest
    langevin langevinDamping langevinTemp langevinHydrogen langevinPiston langevinPistonTarget
    langevinPistonPeriod langevinPistonDecay langevinPistonTemp useGroupPressure useFlexibleCell
    useConstantArea useConstantRatio seed firsttimestep minimize run numsteps minimization reinitvels
    margin CUDASOAintegrate GPUresident constraints consref conskfile conskcol constraintScaling colvars
    colvarsConfig gbis alphaCutoff ionConcentration sasa solventDielectric tcouple tcoupleTemp rescaleFreq
    rescaleTemp reassignFreq reassignTemp BerendsenPressure BerendsenPressureTarget COMmotion zeroMomentum
    fixedAtoms fixedAtomsFile fixedAtomsCol fixedAtomsForces minTinyStep minBabyStep minLineGoal
    splitPatch hgroupCutoff LJcorrection vdwForceSwitching mergeCrossterms cosAngles ldBalancer
    twoAwayX twoAwayY twoAwayZ usePMECUDA PMEInterpOrder FFTWUseWisdom FFTWEstimate
    """.split()  # noqa: SIM905 (a word list reads best as words)
}
COMMANDS = {"minimize", "run"}
INPUT_FILE_KEYWORDS = (
    "structure",
    "coordinates",
    "bincoordinates",
    "binvelocities",
    "extendedsystem",
    "consref",
    "conskfile",
)
UNSUPPORTED_TCL = {"set", "source", "proc", "if", "for", "foreach", "while", "puts", "expr", "callback"}
TRUE_WORDS = {"on", "yes", "true"}
FALSE_WORDS = {"off", "no", "false"}

ENERGY_COLUMNS = (
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


class FatalError(Exception):
    """A NAMD FATAL ERROR: printed as NAMD prints it, then exit 1."""


def log(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ command line


def parse_command_line(argv: list[str]) -> Path:
    """The config file among charm++ options (`+p2`, `+p 2`, `+devices 0`, `++ppn 4`, ...)."""
    takes_value = {"+p", "+ppn", "++ppn", "+devices", "+pemap", "+commap", "++n", "++p"}
    positional = []
    args = iter(argv)
    for arg in args:
        if arg.startswith("+"):
            if arg in takes_value:
                next(args, None)
            continue
        positional.append(arg)
    if len(positional) != 1:
        raise FatalError("No simulation config file specified on command line.")
    return Path(positional[0])


# ------------------------------------------------------------------ config


@dataclass
class Config:
    values: dict[str, list[str]] = field(default_factory=dict)
    commands: list[tuple[str, int]] = field(default_factory=list)

    def get(self, keyword: str, default: str | None = None) -> str | None:
        found = self.values.get(keyword.lower())
        return found[-1] if found else default

    def all(self, keyword: str) -> list[str]:
        return self.values.get(keyword.lower(), [])

    def flag(self, keyword: str, default: bool = False) -> bool:
        value = self.get(keyword)
        if value is None:
            return default
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise FatalError(f"Illegal value '{value}' for parameter {keyword}: expected on or off.")

    def number(self, keyword: str, default: float) -> float:
        value = self.get(keyword)
        if value is None:
            return default
        try:
            return float(value.split()[0])
        except ValueError as exc:
            raise FatalError(f"Illegal value '{value}' for parameter {keyword}: expected a number.") from exc

    def integer(self, keyword: str, default: int) -> int:
        return int(self.number(keyword, default))


def parse_config(text: str) -> Config:
    config = Config()
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.strip(), value.strip().removeprefix("=").strip()
        lowered = keyword.lower()
        if lowered in UNSUPPORTED_TCL or "$" in line:
            raise FatalError(f"Tcl command '{keyword}' at line {line_number} is not supported by this NAMD build.")
        if lowered not in KNOWN_KEYWORDS:
            log(f"ERROR: Unknown parameter {keyword} at line {line_number}")
            raise FatalError(f"UNKNOWN PARAMETER: {keyword}")
        if not value:
            raise FatalError(f"Parameter {keyword} at line {line_number} has no value.")
        if lowered in COMMANDS:
            try:
                config.commands.append((lowered, int(value)))
            except ValueError as exc:
                raise FatalError(f"Illegal number of steps '{value}' for {keyword}.") from exc
        else:
            config.values.setdefault(lowered, []).append(value)
    return config


def validate(config: Config) -> None:
    """Required keywords, periodic cell for PME, and something to do."""
    for keyword in ("structure", "coordinates", "outputName"):
        if config.get(keyword) is None:
            raise FatalError(f"Required parameter {keyword} was not set.")
    if not config.all("parameters") and not config.flag("paraTypeXplor") and config.get("amber") is None:
        raise FatalError("Parameter file(s) must be specified with the parameters keyword.")
    if config.get("temperature") is None and config.get("binvelocities") is None:
        raise FatalError("Must have either an initial temperature or a velocity file")
    if config.get("temperature") is not None and config.get("binvelocities") is not None:
        raise FatalError("Cannot specify both an initial temperature and a velocity file")
    has_cell = all(config.get(f"cellBasisVector{i}") for i in (1, 2, 3))
    if config.flag("PME") and not has_cell and config.get("extendedSystem") is None:
        raise FatalError("PME requires periodic boundary conditions.")
    if not config.commands and config.get("numsteps") is None:
        raise FatalError("No run or minimize command: nothing to do.")


def check_input_files(config: Config) -> None:
    paths = [config.get(keyword) for keyword in INPUT_FILE_KEYWORDS]
    paths += config.all("parameters")
    if config.flag("extraBonds"):
        paths += config.all("extraBondsFile")
    for name in filter(None, paths):
        if not Path(name).is_file():
            raise FatalError(f"Unable to open text file {name}: No such file or directory")


# ------------------------------------------------------------------ inputs


def psf_atom_count(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if "!NATOM" in line:
            return int(line.split()[0])
    raise FatalError(f"No NATOM section in the structure file {path}.")


def pdb_coordinates(path: Path) -> list[tuple[float, float, float]]:
    coordinates = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("ATOM", "HETATM")):
            try:
                coordinates.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
            except ValueError as exc:
                raise FatalError(f"Bad coordinates in PDB file {path}: {line.strip()}") from exc
    return coordinates


def read_binary_vectors(path: Path) -> list[tuple[float, float, float]]:
    data = path.read_bytes()
    if len(data) < 4:
        raise FatalError(f"Binary file {path} is too short.")
    (count,) = struct.unpack("<i", data[:4])
    if len(data) != 4 + 24 * count:
        raise FatalError(f"Binary file {path} has the wrong size for {count} atoms.")
    values = struct.unpack(f"<{3 * count}d", data[4:])
    return [tuple(values[i : i + 3]) for i in range(0, len(values), 3)]  # type: ignore[misc]


def write_binary_vectors(path: Path, vectors: list[tuple[float, float, float]]) -> None:
    flat = [component for vector in vectors for component in vector]
    path.write_bytes(struct.pack("<i", len(vectors)) + struct.pack(f"<{len(flat)}d", *flat))


def cell_vectors(config: Config) -> list[tuple[float, float, float]]:
    vectors = []
    for i in (1, 2, 3):
        value = config.get(f"cellBasisVector{i}")
        vectors.append(tuple(float(v) for v in value.split()[:3]) if value else (0.0, 0.0, 0.0))
    return vectors  # type: ignore[return-value]


# ------------------------------------------------------------------ the simulated system


@dataclass
class System:
    atoms: int
    coordinates: list[tuple[float, float, float]]
    velocities: list[tuple[float, float, float]]
    cell: list[tuple[float, float, float]]
    seed: int
    temperature: float

    def energy_terms(self, step: int, minimizing: bool, progress: float) -> dict[str, float]:
        """Energies for (seed, step): a decaying excess while minimizing, noise around equilibrium in dynamics."""
        noise = random.Random(self.seed * 1_000_003 + step)
        n = self.atoms
        excess = 0.0 if not minimizing else 40.0 * n * math.exp(-5.0 * progress)
        jitter = 0.0 if minimizing else 1.0

        def wobble(scale: float) -> float:
            return noise.gauss(0.0, scale) * jitter

        bond = 0.6 * n + 0.3 * excess + wobble(0.05 * n)
        angle = 1.1 * n + 0.2 * excess + wobble(0.07 * n)
        dihed = 0.9 * n + wobble(0.02 * n)
        imprp = 0.05 * n + wobble(0.005 * n)
        elect = -2.5 * n + 0.3 * excess + wobble(0.05 * n)
        vdw = 0.35 * n + 0.2 * excess + wobble(0.03 * n)
        temp = 0.0 if minimizing else max(0.0, self.temperature + noise.gauss(0.0, self.temperature * 0.02))
        kinetic = 1.5 * n * BOLTZMANN * temp
        potential = bond + angle + dihed + imprp + elect + vdw
        volume = abs(self.cell[0][0] * self.cell[1][1] * self.cell[2][2])
        pressure = 0.0 if minimizing else noise.gauss(1.0, 80.0)
        return {
            "BOND": bond, "ANGLE": angle, "DIHED": dihed, "IMPRP": imprp, "ELECT": elect, "VDW": vdw,
            "BOUNDARY": 0.0, "MISC": 0.0, "KINETIC": kinetic, "TOTAL": potential + kinetic, "TEMP": temp,
            "POTENTIAL": potential, "TOTAL3": potential + kinetic, "TEMPAVG": temp, "PRESSURE": pressure,
            "GPRESSURE": pressure * 0.98, "VOLUME": volume, "PRESSAVG": pressure, "GPRESSAVG": pressure * 0.98,
        }  # fmt: skip

    def advance(self, step: int) -> None:
        """Move the atoms a little (deterministically) so written coordinates change with time."""
        shake = random.Random(self.seed * 7919 + step)
        self.coordinates = [(x + shake.uniform(-0.01, 0.01), y + shake.uniform(-0.01, 0.01),
                             z + shake.uniform(-0.01, 0.01)) for x, y, z in self.coordinates]  # fmt: skip


def initial_velocities(atoms: int, temperature: float, seed: int) -> list[tuple[float, float, float]]:
    draw = random.Random(seed)
    sigma = math.sqrt(BOLTZMANN * temperature / 12.0) if temperature > 0 else 0.0
    return [(draw.gauss(0, sigma), draw.gauss(0, sigma), draw.gauss(0, sigma)) for _ in range(atoms)]


# ------------------------------------------------------------------ output


def format_energy_line(label: str, step: int, terms: dict[str, float]) -> str:
    columns = "".join(f"{value:15.4f}" if i % 5 == 4 else f"{value:14.4f}" for i, value in enumerate(terms.values()))
    return f"{label}: {step:7d}{columns}"


def format_etitle() -> str:
    titles = "".join(f"{name:>15}" if i % 5 == 4 else f"{name:>14}" for i, name in enumerate(ENERGY_COLUMNS))
    return f"ETITLE:      TS{titles}"


def write_xsc(path: Path, step: int, cell: list[tuple[float, float, float]]) -> None:
    numbers = " ".join(f"{v:g}" for vector in cell for v in vector)
    path.write_text(
        "# NAMD extended system configuration output file\n"
        "#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z\n"
        f"{step} {numbers} 0 0 0\n"
    )


class DcdWriter:
    """A CHARMM/NAMD DCD trajectory: header block, title block, atom count, then x/y/z float blocks per frame."""

    def __init__(self, path: Path, atoms: int, first_step: int, interval: int, timestep_fs: float) -> None:
        self.path, self.atoms, self.frames = path, atoms, 0
        self.first_step, self.interval, self.timestep_fs = first_step, interval, timestep_fs
        self._write_header()

    @staticmethod
    def _record(payload: bytes) -> bytes:
        return struct.pack("<i", len(payload)) + payload + struct.pack("<i", len(payload))

    def _write_header(self) -> None:
        icntrl = [self.frames, self.first_step, self.interval, self.frames * self.interval, 0, 0, 0, 0, 0]
        header = b"CORD" + struct.pack("<9i", *icntrl) + struct.pack("<f", self.timestep_fs / 48.88821)
        header += struct.pack("<10i", 0, 0, 0, 0, 0, 0, 0, 0, 0, 24)
        titles = [b"REMARKS FILENAME=" + self.path.name.encode()[:60], b"REMARKS DCD written by NAMD stand-in"]
        title_block = struct.pack("<i", len(titles)) + b"".join(t.ljust(80)[:80] for t in titles)
        with self.path.open("r+b" if self.path.exists() and self.frames else "wb") as out:
            out.write(self._record(header) + self._record(title_block) + self._record(struct.pack("<i", self.atoms)))

    def append(self, coordinates: list[tuple[float, float, float]]) -> None:
        self.frames += 1
        self._write_header()  # frame count lives in the header
        with self.path.open("ab") as out:
            for axis in range(3):
                out.write(self._record(struct.pack(f"<{self.atoms}f", *(c[axis] for c in coordinates))))


# ------------------------------------------------------------------ the run


@dataclass
class Clock:
    steps_per_second: float
    started_wall: float = field(default_factory=time.monotonic)
    started_cpu: float = field(default_factory=time.process_time)
    paced_steps: int = 0

    def pace(self, steps: int) -> None:
        """Sleep so the run keeps to the configured speed."""
        self.paced_steps += steps
        if self.steps_per_second <= 0 or math.isinf(self.steps_per_second):
            return
        ahead = self.paced_steps / self.steps_per_second - (time.monotonic() - self.started_wall)
        if ahead > 0:
            time.sleep(ahead)

    def wall(self) -> float:
        return time.monotonic() - self.started_wall

    def cpu(self) -> float:
        return time.process_time() - self.started_cpu


def memory_kb() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def steps_per_second_setting() -> float:
    raw = os.environ.get("NAMD_STANDIN_STEPS_PER_SECOND", str(DEFAULT_STEPS_PER_SECOND)).strip().lower()
    try:
        value = float(raw)
    except ValueError as exc:
        raise FatalError(f"NAMD_STANDIN_STEPS_PER_SECOND must be a number, not '{raw}'.") from exc
    return math.inf if value == 0 else value


@dataclass
class Outputs:
    name: str
    energies_every: int
    timing_every: int
    restart_every: int
    dcd: DcdWriter | None


def next_output_step(step: int, last: int, outputs: Outputs) -> int:
    """The next step at which something is written (or at most 50 steps on, to pace smoothly)."""
    frequencies = [outputs.energies_every, outputs.timing_every, outputs.restart_every]
    if outputs.dcd:
        frequencies.append(outputs.dcd.interval)
    candidates = [(step // every + 1) * every for every in frequencies if every > 0]
    return min([last, step + 50, *candidates])


def run_command(kind: str, steps: int, first_step: int, system: System, outputs: Outputs, clock: Clock,
                energies_written: list[int]) -> int:  # fmt: skip
    """Run one `minimize N` or `run N`; return the step reached."""
    minimizing = kind == "minimize"
    log(f"TCL: {'Minimizing' if minimizing else 'Running'} for {steps} steps")
    if minimizing:
        log("LINE MINIMIZER REDUCING GRADIENT FROM 1234.56 TO 0.123456")
    command_wall_start = clock.wall()
    step = first_step
    last = first_step + steps
    while True:
        if step % outputs.energies_every == 0 or step in (first_step, last):
            if len(energies_written) % 10 == 0:
                log()
                log(format_etitle())
                log()
            terms = system.energy_terms(step, minimizing, (step - first_step) / max(steps, 1))
            log(format_energy_line("ENERGY", step, terms))
            energies_written.append(step)
        if step > first_step and step % outputs.timing_every == 0:
            done = step - first_step
            wall, cpu = clock.wall() - command_wall_start, clock.cpu()
            per_step = wall / done
            hours_left = per_step * (last - step) / 3600
            log(f"TIMING: {step}  CPU: {cpu:g}, {cpu / max(done, 1):g}/step  Wall: {wall:g}, {per_step:g}/step, "
                f"{hours_left:g} hours remaining, {memory_kb():f} kB of memory in use.")  # fmt: skip
        if outputs.restart_every and step > first_step and step % outputs.restart_every == 0:
            write_snapshot(system, f"{outputs.name}.restart", step, "RESTART")
            log("FINISHED WRITING RESTART COORDINATES")
        if outputs.dcd and step > first_step and step % outputs.dcd.interval == 0:
            outputs.dcd.append(system.coordinates)
            log(f"WRITING COORDINATES TO DCD FILE {outputs.dcd.path.name} AT STEP {step}")
        if step >= last:
            return step
        advance = next_output_step(step, last, outputs) - step
        for offset in range(1, advance + 1):
            system.advance(step + offset)
        clock.pace(advance)
        step += advance


def write_snapshot(system: System, prefix: str, step: int, kind: str) -> None:
    """Coordinates, velocities and cell as `<prefix>.coor/.vel/.xsc`; kind is OUTPUT or RESTART."""
    write_binary_vectors(Path(f"{prefix}.coor"), system.coordinates)
    log(f"WRITING COORDINATES TO {kind} FILE AT STEP {step}")
    write_binary_vectors(Path(f"{prefix}.vel"), system.velocities)
    log(f"WRITING VELOCITIES TO {kind} FILE AT STEP {step}")
    write_xsc(Path(f"{prefix}.xsc"), step, system.cell)
    log(f"WRITING EXTENDED SYSTEM TO {kind} FILE AT STEP {step}")


def load_system(config: Config) -> System:
    atoms = psf_atom_count(Path(config.get("structure")))
    pdb = pdb_coordinates(Path(config.get("coordinates")))
    if len(pdb) != atoms:
        raise FatalError("Number of pdb and psf atoms are not the same!")
    coordinates = pdb
    if config.get("bincoordinates"):
        coordinates = read_binary_vectors(Path(config.get("bincoordinates")))
        if len(coordinates) != atoms:
            raise FatalError("Number of coordinates in the binary coordinates file does not match the PSF.")
    seed = config.integer("seed", DEFAULT_SEED)
    temperature = config.number("temperature", config.number("langevinTemp", 300.0))
    if config.get("binvelocities"):
        velocities = read_binary_vectors(Path(config.get("binvelocities")))
        if len(velocities) != atoms:
            raise FatalError("Number of velocities in the binary velocities file does not match the PSF.")
    else:
        velocities = initial_velocities(atoms, temperature, seed)
    return System(
        atoms, coordinates, velocities, cell_vectors(config), seed, config.number("langevinTemp", temperature)
    )


def print_banner(config_path: Path) -> None:
    log("Charm++: standalone mode (not using charmrun)")
    log("Charm++> Running in non-SMP mode: 1 processes (PEs)")
    log(f"Info: NAMD {VERSION} for Linux-x86_64-multicore")
    log("Info: Please visit http://www.ks.uiuc.edu/Research/namd/ for the real thing.")
    log(f"Info: Configuration file is {config_path}")


def print_parameters(config: Config, system: System, first_step: int, total_steps: int) -> None:
    log("Info: SIMULATION PARAMETERS:")
    log(f"Info: TIMESTEP               {config.number('timestep', 1.0):g}")
    log(f"Info: NUMBER OF STEPS        {total_steps}")
    log(f"Info: STEPS PER CYCLE        {config.integer('stepspercycle', 20)}")
    if config.flag("PME"):
        log("Info: PARTICLE MESH EWALD (PME) ACTIVE")
    log(f"Info: CUTOFF                 {config.number('cutoff', 12.0):g}")
    log(f"Info: FIRST TIMESTEP         {first_step}")
    log(f"Info: RANDOM NUMBER SEED     {system.seed}")
    log(f"Info: STRUCTURE FILE         {config.get('structure')}")
    for parameter_file in config.all("parameters"):
        log(f"Info: PARAMETERS             {parameter_file}")
    log(f"Info: COORDINATE PDB         {config.get('coordinates')}")
    log(f"Info: OUTPUT FILENAME        {config.get('outputName')}")
    log("Info: STRUCTURE SUMMARY:")
    log(f"Info: {system.atoms} ATOMS")
    log(f"Info: TOTAL MASS = {system.atoms * 6.0:.4f} amu")
    log(f"Info: INITIAL TEMPERATURE = {config.number('temperature', 0.0):g}")


def simulate(config_path: Path) -> None:
    print_banner(config_path)
    config = parse_config(config_path.read_text(errors="replace"))
    validate(config)
    check_input_files(config)
    system = load_system(config)
    commands = config.commands or [("run", config.integer("numsteps", 0))]
    first_step = config.integer("firsttimestep", 0)
    print_parameters(config, system, first_step, sum(steps for _, steps in commands))
    energies_every = max(1, config.integer("outputEnergies", 1))
    name = config.get("outputName")
    dcd_every = config.integer("dcdfreq", 0)
    outputs = Outputs(
        name=name,
        energies_every=energies_every,
        timing_every=max(1, config.integer("outputTiming", max(energies_every * 10, 100))),
        restart_every=config.integer("restartfreq", 0),
        dcd=DcdWriter(Path(f"{name}.dcd"), system.atoms, first_step, dcd_every, config.number("timestep", 1.0))
        if dcd_every > 0 else None,
    )  # fmt: skip
    clock = Clock(steps_per_second_setting())
    log("Info: Finished startup at 0.01 s, 1 MB of memory in use")
    step, energies_written = first_step, []
    for kind, steps in commands:
        step = run_command(kind, steps, step, system, outputs, clock, energies_written)
    write_snapshot(system, name, step, "OUTPUT")
    log("=" * 76)
    log(f"WallClock: {clock.wall():.6f}  CPUTime: {clock.cpu():.6f}  Memory: {memory_kb() / 1024:.6f} MB")
    log("[Partition 0][Node 0] End of program")


def on_sigterm(signum: int, _frame: object) -> None:
    """SLURM's scancel or time limit: NAMD dies with the signal; keep what was logged."""
    sys.stdout.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    if argv and argv[0] in {"--version", "+version"}:
        log(f"Info: NAMD {VERSION} for Linux-x86_64-multicore")
        return 0
    try:
        config_path = parse_command_line(argv)
        if not config_path.is_file():
            raise FatalError(f"Unable to open text file {config_path}: No such file or directory")
        simulate(config_path)
    except FatalError as error:
        log(f"FATAL ERROR: {error}")
        log("[0] Stack Traceback:")
        sys.stderr.write(f"FATAL ERROR: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
