"""factory_boy factories for the portal's models.

Jobs are built the way `jobs.services.create_job` builds them (a built-in template's config rendered for a
water box, its batch script rendered for the cluster's `cpu` recipe, its dirs under the member's roots), then
placed in a state by a trait that sets what that state needs: `ready`, `submitting`, `submitted` (an id, a
submission time), `running` (a start), `completed`/`failed`/`timed_out` (an end, an exit code, the results
back: pass `finished_at=None` for a job whose results copy is still to come).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import factory
from django.utils import timezone

from accounts.models import User
from clusters.crypto import SealedSecret, encrypt
from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, Partition
from clusters.paths import expand_root
from clusters.selectors import remote_username
from clusters.ssh.keys import generate_ed25519_key
from jobs import file_store
from jobs.models import InputFile, Job, JobState
from templates_app.batch_script import Resources, ScriptInputs, render_batch_script
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template, TemplateVersion
from templates_app.selectors import latest_version
from templates_app.services import cluster_settings, config_path, launch_spec, render_version

MEMBER_PASSWORD = "correct horse battery staple"
CLUSTER_PASSWORD = "a cluster password"
# The water box of tests/fixtures/namd (water.psf, water.pdb, par_water.prm): a job's values and resources.
WATER_VALUES = {
    "structure": "water.psf",
    "coordinates": "water.pdb",
    "parameters": "par_water.prm",
    "cell_x": 30.0,
    "cell_y": 30.0,
    "cell_z": 30.0,
    "run_steps": 100,
}
WATER_RESOURCES = {
    "partition": "debug",
    "nodes": 1,
    "ntasks": 1,
    "cpus_per_task": 1,
    "memory_mb": None,
    "walltime_s": 600,
    "gpus": 0,
    "account": None,
    "qos": None,
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@lab.example")
    password = factory.django.Password(MEMBER_PASSWORD)
    is_active = True
    is_staff = False


class ClusterProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClusterProfile

    name = factory.Sequence(lambda n: f"Cluster {n}")
    slug = factory.Sequence(lambda n: f"cluster-{n}")
    login_host = "login.cluster.example"
    login_port = 22
    is_active = True


class PartitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partition

    profile = factory.SubFactory(ClusterProfileFactory)
    name = "debug"
    is_default = True
    max_walltime_s = 3600
    cores_per_node = 2


class LaunchRecipeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LaunchRecipe

    profile = factory.SubFactory(ClusterProfileFactory)
    name = "cpu"
    kind = LaunchRecipe.Kind.CPU
    command = "srun namd2 +p{cores} {config}"


class SchedulableProfileFactory(ClusterProfileFactory):
    """A cluster jobs can be made for: a default `debug` partition (1 h) and a `cpu` recipe."""

    debug_partition = factory.RelatedFactory(PartitionFactory, factory_related_name="profile")
    cpu_recipe = factory.RelatedFactory(LaunchRecipeFactory, factory_related_name="profile")

    class Meta:
        skip_postgeneration_save = True


class CredentialFactory(factory.django.DjangoModelFactory):
    """A member's login, sealed as clusters.services seals it (a password; `key=True`: a fresh ed25519 key)."""

    class Meta:
        model = ClusterCredential

    class Params:
        plain_secret = CLUSTER_PASSWORD
        key = factory.Trait(
            auth_kind=ClusterCredential.AuthKind.KEY,
            generated=factory.LazyFunction(lambda: generate_ed25519_key(comment="factory", passphrase=None)),
            plain_secret=factory.LazyAttribute(lambda o: o.generated.private_key),
            public_key=factory.LazyAttribute(lambda o: o.generated.public_key),
        )

    user = factory.SubFactory(UserFactory, password=None)  # no password hashing: it never logs in
    profile = factory.SubFactory(SchedulableProfileFactory)
    remote_username = factory.LazyAttribute(lambda o: o.user.username)
    auth_kind = ClusterCredential.AuthKind.PASSWORD
    secret = factory.LazyAttribute(lambda o: SealedSecret(encrypt(o.plain_secret)))
    public_key = ""


def builtin_version(slug: str) -> TemplateVersion:
    """The latest version of a built-in template, loading the built-ins on first use."""
    template = Template.objects.filter(slug=slug).first()
    if template is None:
        load_builtin_templates()
        template = Template.objects.get(slug=slug)
    return latest_version(template)


def _job_dir(o: Any, pattern: str) -> str:
    username = remote_username(user=o.owner, profile=o.profile)
    return f"{expand_root(pattern, username)}/{o.template_version.template.slug}-{o.uuid.hex[:8]}"


def _batch_script(o: Any) -> str:
    recipe = o.profile.launch_recipes.get(name=o.recipe_name)
    inputs = ScriptInputs(job_uuid=o.uuid, job_title=o.title, scratch_dir=o.scratch_dir, config_filename=o.config_path)
    return render_batch_script(cluster_settings(o.profile), launch_spec(recipe), Resources(**o.resources), inputs)


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    class Params:
        template_slug = "npt-equilibration"
        asked_values = factory.LazyFunction(lambda: dict(WATER_VALUES))
        rendered = factory.LazyAttribute(lambda o: render_version(version=o.template_version, values=o.asked_values))
        ready = factory.Trait(state=JobState.READY)
        submitting = factory.Trait(state=JobState.SUBMITTING, submit_attempts=0)
        submitted = factory.Trait(
            state=JobState.PENDING,
            slurm_job_id=factory.Sequence(lambda n: str(7000 + n)),
            slurm_state="PENDING",
            submitted_at=factory.LazyFunction(timezone.now),
            submit_attempts=1,
        )
        running = factory.Trait(
            submitted=True, state=JobState.RUNNING, slurm_state="RUNNING", started_at=factory.LazyFunction(timezone.now)
        )
        completed = factory.Trait(
            running=True,
            state=JobState.COMPLETED,
            slurm_state="COMPLETED",
            exit_code=0,
            ended_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(
            running=True,
            state=JobState.FAILED,
            slurm_state="FAILED",
            exit_code=1,
            ended_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )
        timed_out = factory.Trait(
            running=True,
            state=JobState.TIMEOUT,
            slurm_state="TIMEOUT",
            slurm_reason="TimeLimit",
            exit_code=0,
            ended_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )

    uuid = factory.LazyFunction(uuid.uuid4)
    owner = factory.SubFactory(UserFactory, password=None)
    profile = factory.SubFactory(SchedulableProfileFactory)
    template_version = factory.LazyAttribute(lambda o: builtin_version(o.template_slug))
    title = "water box"
    values = factory.LazyAttribute(lambda o: o.rendered.values)
    resources = factory.LazyFunction(lambda: dict(WATER_RESOURCES))
    recipe_name = "cpu"
    config_text = factory.LazyAttribute(lambda o: o.rendered.config)
    config_path = factory.LazyAttribute(lambda o: config_path(o.template_version.workdir))
    project_dir = factory.LazyAttribute(lambda o: _job_dir(o, o.profile.project_root_pattern))
    scratch_dir = factory.LazyAttribute(lambda o: _job_dir(o, o.profile.scratch_root_pattern))
    batch_script = factory.LazyAttribute(_batch_script)
    state = JobState.DRAFT


def _staged(o: Any) -> str:
    """The portal's copy of an upload, written where jobs.file_store keeps it."""
    path = file_store.upload_path(o.job.uuid, file_store.staged_name(o.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(o.content)
    return str(path)


class InputFileFactory(factory.django.DjangoModelFactory):
    """An input received by the portal (its staged copy on disk); `on_cluster=True`: copied to the cluster."""

    class Meta:
        model = InputFile

    class Params:
        content = b"* parameters\nEND\n"
        on_cluster = factory.Trait(
            state=InputFile.State.UPLOADED,
            staged_path="",
            uploaded_at=factory.LazyFunction(timezone.now),
            bytes_uploaded=factory.SelfAttribute("size_bytes"),
        )

    job = factory.SubFactory(JobFactory)
    name = factory.Sequence(lambda n: f"extra{n}.prm")
    role = ""
    size_bytes = factory.LazyAttribute(lambda o: len(o.content))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    state = InputFile.State.RECEIVED
    staged_path = factory.LazyAttribute(_staged)
