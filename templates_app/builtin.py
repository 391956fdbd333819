"""The three templates every portal starts with, and the protocol made of them (`manage.py load_builtin_templates`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import save_protocol
from templates_app.services import save_template_version

INPUTS = [
    {
        "name": "structure",
        "type": "file",
        "default": "system.psf",
        "extensions": [".psf"],
        "namd_keyword": "structure",
        "help": "The PSF structure file.",
    },
    {
        "name": "coordinates",
        "type": "file",
        "default": "system.pdb",
        "extensions": [".pdb"],
        "namd_keyword": "coordinates",
        "help": "The PDB coordinates matching the PSF.",
    },
    {
        "name": "parameters",
        "type": "file",
        "default": "par_all36.prm",
        "extensions": [".prm", ".inp", ".par", ".str"],
        "namd_keyword": "parameters",
        "help": "The CHARMM parameter file.",
    },
]
OUTPUT_NAME = {
    "name": "output_name",
    "type": "text",
    "default": "out",
    "pattern": "[A-Za-z0-9_-]{1,40}",
    "help": "Prefix of the output files (.coor, .vel, .xsc, .dcd).",
}
TEMPERATURE = {"name": "temperature", "type": "float", "default": 300.0, "minimum": 0, "maximum": 1000, "unit": "K"}
CUTOFF = {"name": "cutoff", "type": "float", "default": 12.0, "minimum": 6, "maximum": 20, "unit": "Å"}
SEED = {
    "name": "seed",
    "type": "integer",
    "required": False,
    "minimum": 1,
    "maximum": 2_147_483_647,
    "help": "The random number seed (initial velocities, Langevin). Empty: NAMD's own, from the clock.",
}
ENERGIES = {
    "name": "output_energies",
    "type": "integer",
    "default": 100,
    "minimum": 1,
    "maximum": 1_000_000,
    "unit": "steps",
}

BODIES = Path(__file__).resolve().parent / "builtin_bodies"


def body(slug: str) -> str:
    """A built-in template's Jinja2 body, kept as a plain file an admin would recognise."""
    return (BODIES / f"{slug}.namd.j2").read_text()


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
        "vacuum-minimization",
        "Minimization in vacuum",
        Template.Category.MINIMIZATION,
        "Energy minimization of a structure without solvent or periodic boundaries.",
        body("vacuum-minimization"),
        [
            *INPUTS,
            TEMPERATURE,
            SEED,
            CUTOFF,
            OUTPUT_NAME,
            ENERGIES,
            {"name": "minimize_steps", **STEPS, "default": 1000},
        ],
    ),
    BuiltinTemplate(
        "npt-equilibration",
        "Explicit-solvent NPT equilibration",
        Template.Category.EQUILIBRATION,
        "Minimize, then equilibrate at constant pressure and temperature with PME in a periodic box; optional "
        "extraBonds restraints (e.g. DNA origami).",
        body("npt-equilibration"),
        [
            *INPUTS,
            {
                "name": "start_coordinates",
                "type": "file",
                "required": False,
                "extensions": [".coor"],
                "namd_keyword": "bincoordinates",
                "help": "Optional: start from these binary coordinates (e.g. a minimization's .coor) instead of "
                "the PDB's; velocities still come from the temperature.",
            },
            TEMPERATURE,
            SEED,
            CUTOFF,
            OUTPUT_NAME,
            ENERGIES,
            *DYNAMICS,
            {"name": "minimize_steps", **STEPS, "default": 1000},
            *(
                {
                    "name": f"cell_{axis}",
                    "type": "float",
                    "default": 60.0,
                    "minimum": 5,
                    "maximum": 2000,
                    "unit": "Å",
                    "help": f"Periodic cell length along {axis}.",
                }
                for axis in "xyz"
            ),
            {
                "name": "restraints",
                "type": "file",
                "required": False,
                "extensions": [".txt", ".extrabonds"],
                "namd_keyword": "extraBondsFile",
                "help": "Optional extraBonds restraints file.",
            },
        ],
    ),
    BuiltinTemplate(
        "production-restart",
        "Production from a restart",
        Template.Category.PRODUCTION,
        "NVT or NPT production continuing from a previous job's .coor/.vel/.xsc at its last step.",
        body("production-restart"),
        [
            *INPUTS,
            TEMPERATURE,
            SEED,
            CUTOFF,
            OUTPUT_NAME,
            ENERGIES,
            *DYNAMICS,
            {
                "name": "restart_coordinates",
                "type": "file",
                "default": "previous.coor",
                "extensions": [".coor"],
                "namd_keyword": "bincoordinates",
            },
            {
                "name": "restart_velocities",
                "type": "file",
                "default": "previous.vel",
                "extensions": [".vel"],
                "namd_keyword": "binvelocities",
            },
            {
                "name": "restart_cell",
                "type": "file",
                "default": "previous.xsc",
                "extensions": [".xsc"],
                "namd_keyword": "extendedSystem",
            },
            {
                "name": "first_step",
                "type": "integer",
                "default": 0,
                "minimum": 0,
                "maximum": 10**12,
                "unit": "steps",
                "help": "The step the previous job ended at.",
            },
            {"name": "ensemble", "type": "choice", "default": "NPT", "choices": ["NVT", "NPT"]},
        ],
    ),
)


@dataclass(frozen=True)
class BuiltinStage:
    name: str
    template_slug: str
    continuation: str
    values: dict[str, Any]
    repeat: int = 1


BUILTIN_PROTOCOL_SLUG = "min-equil-prod"
BUILTIN_PROTOCOL_NAME = "Minimize, equilibrate, produce"
BUILTIN_PROTOCOL_STAGES = (
    BuiltinStage("minimization", "vacuum-minimization", "first", {"output_name": "minimization"}),
    # its restart mapping gives the equilibration only `start_coordinates` (bincoordinates): velocities come
    # from the temperature, as NAMD refuses `temperature` with `binvelocities`, not with `bincoordinates`
    BuiltinStage("equilibration", "npt-equilibration", "restart", {"output_name": "equilibration"}),
    BuiltinStage("production", "production-restart", "restart", {"output_name": "production"}, repeat=3),
)


@transaction.atomic
def load_builtin_templates() -> list[Template]:
    """Create missing built-in templates and give changed ones a new version; never touches others.

    Then the built-in protocol made of them (`load_builtin_protocol`).
    """
    loaded = []
    for builtin in BUILTIN_TEMPLATES:
        template, _ = Template.objects.get_or_create(
            slug=builtin.slug,
            defaults={"name": builtin.name, "category": builtin.category, "description": builtin.description},
        )
        save_template_version(template=template, body=builtin.body, variables=builtin.variables, user=None)
        loaded.append(template)
    load_builtin_protocol()
    return loaded


@transaction.atomic
def load_builtin_protocol() -> Protocol:
    """Minimization -> NPT equilibration -> production x 3, made or brought back to its built-in stages.

    An admin's retirement and shared values are kept. Raises InvalidInput (PROTOCOL_INVALID).
    """
    protocol, _ = Protocol.objects.get_or_create(
        slug=BUILTIN_PROTOCOL_SLUG,
        defaults={
            "name": BUILTIN_PROTOCOL_NAME,
            "description": "Minimize the structure in vacuum, equilibrate it at constant pressure from the "
            "minimized coordinates, then three production segments, each from the restart files of the one before.",
        },
    )
    stages = [
        ProtocolStage(
            position=position,
            name=stage.name,
            template=Template.objects.get(slug=stage.template_slug),
            repeat=stage.repeat,
            values=stage.values,
            continuation=stage.continuation,
        )
        for position, stage in enumerate(BUILTIN_PROTOCOL_STAGES, start=1)
    ]
    return save_protocol(protocol=protocol, stages=stages)
