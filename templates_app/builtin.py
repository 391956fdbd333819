"""The three templates every portal starts with, loaded by `manage.py load_builtin_templates`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from templates_app.models import Template
from templates_app.services import save_template_version

INPUTS = [
    {"name": "structure", "type": "file", "default": "system.psf", "extensions": [".psf"], "namd_keyword": "structure",
     "help": "The PSF structure file."},
    {"name": "coordinates", "type": "file", "default": "system.pdb", "extensions": [".pdb"],
     "namd_keyword": "coordinates", "help": "The PDB coordinates matching the PSF."},
    {"name": "parameters", "type": "file", "default": "par_all36.prm", "extensions": [".prm", ".inp", ".par", ".str"],
     "namd_keyword": "parameters", "help": "The CHARMM parameter file."},
]  # fmt: skip
OUTPUT_NAME = {"name": "output_name", "type": "text", "default": "out", "pattern": "[A-Za-z0-9_-]{1,40}",
               "help": "Prefix of the output files (.coor, .vel, .xsc, .dcd)."}  # fmt: skip
TEMPERATURE = {"name": "temperature", "type": "float", "default": 300.0, "minimum": 0, "maximum": 1000, "unit": "K"}
CUTOFF = {"name": "cutoff", "type": "float", "default": 12.0, "minimum": 6, "maximum": 20, "unit": "Å"}
ENERGIES = {"name": "output_energies", "type": "integer", "default": 100, "minimum": 1, "maximum": 1_000_000,
            "unit": "steps"}  # fmt: skip

NONBONDED = """\
exclude            scaled1-4
1-4scaling         1.0
cutoff             {{ cutoff }}
switching          on
switchdist         {{ cutoff - 2 }}
pairlistdist       {{ cutoff + 2 }}
"""

MINIMIZATION = f"""\
# Minimization in vacuum
structure          {{{{ structure }}}}
coordinates        {{{{ coordinates }}}}
paraTypeCharmm     on
parameters         {{{{ parameters }}}}
temperature        {{{{ temperature }}}}
{NONBONDED}timestep           1.0
outputName         {{{{ output_name }}}}
outputEnergies     {{{{ output_energies }}}}
minimize           {{{{ minimize_steps }}}}
"""

NPT_EQUILIBRATION = f"""\
# Explicit-solvent NPT equilibration with PME, Langevin thermostat and piston
structure          {{{{ structure }}}}
coordinates        {{{{ coordinates }}}}
paraTypeCharmm     on
parameters         {{{{ parameters }}}}
temperature        {{{{ temperature }}}}
{NONBONDED}timestep           {{{{ timestep }}}}
rigidBonds         all
nonbondedFreq      1
fullElectFrequency 2
stepspercycle      10
PME                on
PMEGridSpacing     1.0
cellBasisVector1   {{{{ cell_x }}}} 0 0
cellBasisVector2   0 {{{{ cell_y }}}} 0
cellBasisVector3   0 0 {{{{ cell_z }}}}
cellOrigin         0 0 0
wrapAll            on
langevin           on
langevinDamping    {{{{ damping }}}}
langevinTemp       {{{{ temperature }}}}
langevinHydrogen   off
langevinPiston        on
langevinPistonTarget  1.01325
langevinPistonPeriod  100.0
langevinPistonDecay   50.0
langevinPistonTemp    {{{{ temperature }}}}
useGroupPressure      yes
useFlexibleCell       no
{{% if restraints %}}extraBonds         on
extraBondsFile     {{{{ restraints }}}}
{{% endif %}}outputName         {{{{ output_name }}}}
outputEnergies     {{{{ output_energies }}}}
restartfreq        {{{{ restart_every }}}}
dcdfreq            {{{{ dcd_every }}}}
xstFreq            {{{{ dcd_every }}}}
minimize           {{{{ minimize_steps }}}}
reinitvels         {{{{ temperature }}}}
run                {{{{ run_steps }}}}
"""

PRODUCTION = f"""\
# Production continuing from a previous job's restart files
structure          {{{{ structure }}}}
coordinates        {{{{ coordinates }}}}
paraTypeCharmm     on
parameters         {{{{ parameters }}}}
bincoordinates     {{{{ restart_coordinates }}}}
binvelocities      {{{{ restart_velocities }}}}
extendedSystem     {{{{ restart_cell }}}}
firsttimestep      {{{{ first_step }}}}
{NONBONDED}timestep           {{{{ timestep }}}}
rigidBonds         all
nonbondedFreq      1
fullElectFrequency 2
stepspercycle      10
PME                on
PMEGridSpacing     1.0
wrapAll            on
langevin           on
langevinDamping    {{{{ damping }}}}
langevinTemp       {{{{ temperature }}}}
langevinHydrogen   off
{{% if ensemble == "NPT" %}}langevinPiston        on
langevinPistonTarget  1.01325
langevinPistonPeriod  100.0
langevinPistonDecay   50.0
langevinPistonTemp    {{{{ temperature }}}}
useGroupPressure      yes
{{% endif %}}outputName         {{{{ output_name }}}}
outputEnergies     {{{{ output_energies }}}}
restartfreq        {{{{ restart_every }}}}
dcdfreq            {{{{ dcd_every }}}}
run                {{{{ run_steps }}}}
"""

STEPS = {"type": "integer", "minimum": 1, "maximum": 500_000_000, "unit": "steps"}
DYNAMICS = [
    {"name": "timestep", "type": "float", "default": 2.0, "minimum": 0.5, "maximum": 4.0, "unit": "fs"},
    {"name": "damping", "type": "float", "default": 1.0, "minimum": 0.1, "maximum": 50, "unit": "1/ps"},
    {"name": "restart_every", **STEPS, "default": 500},
    {"name": "dcd_every", **STEPS, "default": 500},
    {"name": "run_steps", **STEPS, "default": 5000},
]


@dataclass(frozen=True)
class BuiltinTemplate:
    slug: str
    name: str
    category: str
    description: str
    body: str
    variables: list[dict[str, Any]]


BUILTIN_TEMPLATES = (
    BuiltinTemplate(
        "vacuum-minimization", "Minimization in vacuum", Template.Category.MINIMIZATION,
        "Energy minimization of a structure without solvent or periodic boundaries.", MINIMIZATION,
        [*INPUTS, TEMPERATURE, CUTOFF, OUTPUT_NAME, ENERGIES, {"name": "minimize_steps", **STEPS, "default": 1000}],
    ),
    BuiltinTemplate(
        "npt-equilibration", "Explicit-solvent NPT equilibration", Template.Category.EQUILIBRATION,
        "Minimize, then equilibrate at constant pressure and temperature with PME in a periodic box; optional "
        "extraBonds restraints (e.g. DNA origami).", NPT_EQUILIBRATION,
        [*INPUTS, TEMPERATURE, CUTOFF, OUTPUT_NAME, ENERGIES, *DYNAMICS,
         {"name": "minimize_steps", **STEPS, "default": 1000},
         *({"name": f"cell_{axis}", "type": "float", "default": 60.0, "minimum": 5, "maximum": 2000, "unit": "Å",
            "help": f"Periodic cell length along {axis}."} for axis in "xyz"),
         {"name": "restraints", "type": "file", "required": False, "extensions": [".txt", ".extrabonds"],
          "namd_keyword": "extraBondsFile", "help": "Optional extraBonds restraints file."}],
    ),
    BuiltinTemplate(
        "production-restart", "Production from a restart", Template.Category.PRODUCTION,
        "NVT or NPT production continuing from a previous job's .coor/.vel/.xsc at its last step.", PRODUCTION,
        [*INPUTS, TEMPERATURE, CUTOFF, OUTPUT_NAME, ENERGIES, *DYNAMICS,
         {"name": "restart_coordinates", "type": "file", "default": "previous.coor", "extensions": [".coor"],
          "namd_keyword": "bincoordinates"},
         {"name": "restart_velocities", "type": "file", "default": "previous.vel", "extensions": [".vel"],
          "namd_keyword": "binvelocities"},
         {"name": "restart_cell", "type": "file", "default": "previous.xsc", "extensions": [".xsc"],
          "namd_keyword": "extendedSystem"},
         {"name": "first_step", "type": "integer", "default": 0, "minimum": 0, "maximum": 10**12, "unit": "steps",
          "help": "The step the previous job ended at."},
         {"name": "ensemble", "type": "choice", "default": "NPT", "choices": ["NVT", "NPT"]}],
    ),
)  # fmt: skip


@transaction.atomic
def load_builtin_templates() -> list[Template]:
    """Create missing built-in templates and give changed ones a new version; never touches others."""
    loaded = []
    for builtin in BUILTIN_TEMPLATES:
        template, _ = Template.objects.get_or_create(
            slug=builtin.slug,
            defaults={"name": builtin.name, "category": builtin.category, "description": builtin.description},
        )
        save_template_version(template=template, body=builtin.body, variables=builtin.variables, user=None)
        loaded.append(template)
    return loaded
