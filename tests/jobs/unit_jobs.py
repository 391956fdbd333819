"""Jobs made by the services without cluster contact: a cluster profile that is never reached, and drafts."""

from __future__ import annotations

from pathlib import Path

from clusters.models import ClusterProfile, LaunchRecipe, Partition
from jobs import services
from jobs.models import Job
from templates_app.batch_script import Resources
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template
from tests.factories import ClusterProfileFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
VALUES = {
    "structure": "water.psf",
    "coordinates": "water.pdb",
    "parameters": "par_water.prm",
    "cell_x": 30.0,
    "cell_y": 30.0,
    "cell_z": 30.0,
    "run_steps": 100,
}
RESOURCES = Resources(
    partition="debug",
    nodes=1,
    ntasks=1,
    cpus_per_task=1,
    memory_mb=None,
    walltime_s=600,
    gpus=0,
    account=None,
    qos=None,
)


def unit_profile() -> ClusterProfile:
    """A cluster with a `debug` partition and a `cpu` recipe (10 kB upload limit), and the built-in templates."""
    profile = ClusterProfileFactory(slug="unit", max_upload_bytes=10_000)
    Partition.objects.create(profile=profile, name="debug", is_default=True, max_walltime_s=3600, cores_per_node=2)
    LaunchRecipe.objects.create(profile=profile, name="cpu", kind="cpu", command="srun namd2 +p{cores} {config}")
    load_builtin_templates()
    return profile


def new_job(user, profile, **overrides) -> Job:
    """A DRAFT job made by the services (npt-equilibration unless `template` says otherwise)."""
    request = services.JobRequest(
        template_id=Template.objects.get(slug=overrides.pop("template", "npt-equilibration")).pk,
        cluster_id=profile.pk,
        recipe="cpu",
        title=overrides.pop("title", "water"),
        values={**VALUES, **overrides.pop("values", {})},
        resources=RESOURCES,
    )
    return services.create_job(user=user, request=request)
