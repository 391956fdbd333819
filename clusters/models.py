"""Cluster profiles (curated by admins), their partitions and NAMD launch recipes, and each
member's encrypted credential for a cluster. Fields, constraints and values derived from them only.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from clusters import profile_rules
from clusters.crypto import EncryptedSecretField
from clusters.paths import USERNAME_PATTERN, expand_root

HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
PARTITION_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SLURM_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RATE_RE = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,4})?$")


def validate_remote_username(value: str) -> None:
    if not USERNAME_PATTERN.fullmatch(value):  # the same rule as every path built from it
        raise ValidationError(
            "A cluster username is lower-case letters, digits, '_', '.', '-' (at most 32), "
            "starting with a letter or '_'.",
            code="REMOTE_USERNAME_INVALID",
        )


def validate_host(value: str) -> None:
    if not HOST_RE.fullmatch(value):
        raise ValidationError("Enter a host name or IPv4 address, e.g. login.cluster.example.", code="HOST_INVALID")


ROOT_PATTERN_CHARS_RE = re.compile(r"^[A-Za-z0-9_./{}-]+$")


def validate_root_pattern(value: str) -> None:
    if not ROOT_PATTERN_CHARS_RE.fullmatch(value):
        raise ValidationError(
            "A root pattern uses letters, digits, '_', '.', '-', '/' and {username} only.", code="ROOT_PATTERN_INVALID"
        )
    try:
        expand_root(value, "someone")
    except ValueError as exc:
        raise ValidationError(str(exc), code="ROOT_PATTERN_INVALID") from exc


def _raise_problems(problems: list[str], code: str) -> None:
    if problems:
        raise ValidationError(problems, code=code)


# These fields run on members' accounts: the rules are `clusters.profile_rules`, the batch script's too.
def validate_module_lines(value: str) -> None:
    _raise_problems(profile_rules.module_lines_problems(value), "MODULE_LINE_INVALID")


def validate_launch_command(value: str) -> None:
    _raise_problems(profile_rules.launch_command_problems(value), "LAUNCH_COMMAND_INVALID")


def validate_container_image(value: str) -> None:
    _raise_problems(profile_rules.container_image_problems(value), "CONTAINER_IMAGE_INVALID")


def validate_slurm_names(value: list[str]) -> None:
    bad = [name for name in value if not isinstance(name, str) or not SLURM_ACCOUNT_RE.fullmatch(name)]
    if bad:
        raise ValidationError(f"Not valid SLURM names: {', '.join(map(str, bad))}", code="SLURM_NAME_INVALID")


RATE_NAMES = ("su_per_core_hour", "su_per_gpu_hour")


def validate_partition_rates(value: object) -> None:
    """`{"<partition>": {"su_per_core_hour": "2", "su_per_gpu_hour": "10"}}`: either rate may be left out."""
    if not isinstance(value, dict):
        raise ValidationError(
            "Rates by partition are an object keyed by partition name.", code="PARTITION_RATES_INVALID"
        )
    for name, rates in value.items():
        if not PARTITION_NAME_RE.fullmatch(name) or not isinstance(rates, dict) or not rates:
            raise ValidationError(f"Partition {name!r}: give an object of rates.", code="PARTITION_RATES_INVALID")
        for rate_name, rate in rates.items():
            if rate_name not in RATE_NAMES:
                raise ValidationError(
                    f"Partition {name!r}: {rate_name!r} is not one of {', '.join(RATE_NAMES)}.",
                    code="PARTITION_RATES_INVALID",
                )
            if not isinstance(rate, str | int | float) or isinstance(rate, bool) or not RATE_RE.fullmatch(str(rate)):
                raise ValidationError(
                    f"Partition {name!r}: {rate_name} must be a number ≥ 0 with at most 4 decimals.",
                    code="PARTITION_RATES_INVALID",
                )


class ClusterProfile(models.Model):
    """A SLURM cluster the lab uses, as an admin describes it."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    login_host = models.CharField(max_length=253, validators=[validate_host])
    login_port = models.PositiveIntegerField(default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    pinned_host_keys = models.TextField(
        blank=True,
        help_text="The login node's SSH host public keys, one OpenSSH line each. "
        "Connections to any other key are refused.",
    )
    detected_namd_builds = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="What the last 'detect NAMD builds' found: module names and binaries, to write launch recipes from.",
    )
    pending_host_key = models.TextField(
        blank=True, help_text="A key seen at first contact, waiting for an admin to compare fingerprints and accept it."
    )
    project_root_pattern = models.CharField(
        max_length=255, default="/home/{username}/namd_projects", validators=[validate_root_pattern]
    )
    scratch_root_pattern = models.CharField(
        max_length=255, default="/scratch/{username}", validators=[validate_root_pattern]
    )
    module_lines = models.TextField(
        blank=True,
        validators=[validate_module_lines],
        help_text="Lines run before NAMD in batch scripts: 'module load NAME/VERSION ...' only, e.g. "
        "'module load namd/3.0'.",
    )
    allowed_accounts = models.JSONField(default=list, blank=True, validators=[validate_slurm_names])
    allowed_qos = models.JSONField(default=list, blank=True, validators=[validate_slurm_names])
    su_per_core_hour = models.DecimalField(max_digits=10, decimal_places=4, default=1)
    su_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    su_rates_by_partition = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_partition_rates],
        help_text='Rates that differ on some partitions, e.g. {"gpu": {"su_per_core_hour": "2", '
        '"su_per_gpu_hour": "10"}}; a rate left out is the profile\'s.',
    )
    sync_interval_s = models.PositiveIntegerField(default=30, validators=[MinValueValidator(5)])
    max_upload_bytes = models.PositiveBigIntegerField(
        default=10 * 1024**3, validators=[MinValueValidator(1)], help_text="The largest input file a member may upload."
    )
    max_sessions_per_user = models.PositiveIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text="SSH sessions (channels) one member may run at once on the pooled connection of a worker.",
    )
    new_sessions_per_minute = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Cluster-wide budget of new SSH sessions, all members together.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def pinned_host_key_lines(self) -> tuple[str, ...]:
        return tuple(line.strip() for line in self.pinned_host_keys.splitlines() if line.strip())


class Partition(models.Model):
    """A SLURM partition of a cluster with the limits the portal checks before sbatch."""

    profile = models.ForeignKey(ClusterProfile, on_delete=models.CASCADE, related_name="partitions")
    name = models.CharField(max_length=64, validators=[RegexValidator(PARTITION_NAME_RE)])
    is_default = models.BooleanField(default=False)
    max_walltime_s = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    max_nodes = models.PositiveIntegerField(null=True, blank=True)
    cores_per_node = models.PositiveIntegerField(default=1)
    memory_per_node_mb = models.PositiveIntegerField(null=True, blank=True)
    gpus_per_node = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["profile", "name"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "name"], name="partition_unique_name_per_profile"),
            models.UniqueConstraint(
                fields=["profile"], condition=models.Q(is_default=True), name="partition_one_default_per_profile"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile.slug}:{self.name}"


class LaunchRecipe(models.Model):
    """How a cluster starts NAMD: data of the profile, never hard-coded in the portal."""

    class Kind(models.TextChoices):
        CPU = "cpu", "CPU (namd2 under srun/mpirun/charmrun)"
        GPU = "gpu", "GPU (namd3, GPU-resident)"
        CONTAINER = "container", "Container (Apptainer image)"

    profile = models.ForeignKey(ClusterProfile, on_delete=models.CASCADE, related_name="launch_recipes")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    module_lines = models.TextField(
        blank=True,
        validators=[validate_module_lines],
        help_text="Extra module lines for this recipe, e.g. 'module load namd/3.0-cuda'.",
    )
    command = models.CharField(
        max_length=500,
        validators=[validate_launch_command],
        help_text="Plain words and placeholders only (no shell text). "
        "The launch line with placeholders {cores}, {gpus}, {devices}, {image}, {config}, "
        "e.g. 'srun namd2 +p{cores} {config}' or 'namd3 +p{cores} +devices {devices} {config}'.",
    )
    container_image = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_container_image],
        help_text="Admin-allowed Apptainer image path.",
    )
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["profile", "name"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "name"], name="recipe_unique_name_per_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.profile.slug}:{self.name}"

    def clean(self) -> None:
        if self.kind == self.Kind.CONTAINER and not self.container_image:
            raise ValidationError({"container_image": "A container recipe names its Apptainer image."})
        if "{config}" not in self.command:
            raise ValidationError({"command": "The command must contain {config}, where the NAMD config goes."})


class ClusterCredential(models.Model):
    """One member's login on one cluster: a private key (maybe with passphrase) or a password, encrypted."""

    class AuthKind(models.TextChoices):
        KEY = "key", "SSH private key"
        PASSWORD = "password", "Password"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cluster_credentials")
    profile = models.ForeignKey(ClusterProfile, on_delete=models.CASCADE, related_name="credentials")
    remote_username = models.CharField(max_length=32, validators=[validate_remote_username])
    auth_kind = models.CharField(max_length=16, choices=AuthKind.choices)
    secret = EncryptedSecretField(help_text="The private key text or the password, encrypted.")
    passphrase = EncryptedSecretField(null=True, blank=True)
    public_key = models.TextField(blank=True, help_text="For a key: its public half, to install on the cluster.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_summary = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["profile", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "profile"], name="credential_one_per_user_and_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.remote_username}@{self.profile.slug} ({self.user})"


class RemoteCommandRecord(models.Model):
    """One remote command the portal ran in a member's name: what, where, how it went (no secrets)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="remote_commands")
    profile = models.ForeignKey(ClusterProfile, on_delete=models.CASCADE, related_name="remote_commands")
    argv = models.JSONField(help_text="The command as run, with anything secret-looking redacted.")
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True, help_text="The transport's failure code, if it failed.")
    duration_ms = models.PositiveIntegerField(default=0)
    bytes_sent = models.PositiveBigIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True, help_text="The Celery task that ran it, if any.")
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="remote_commands",
        db_index=True,
        help_text="The job it ran for, if any (records made before this column have none).",
    )
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who asked for it, when that is known.",
    )
    started_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"], name="remote_cmd_user_recent")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.profile.slug}: {' '.join(self.argv)[:80]}"


class ClusterProfileChange(models.Model):
    """One change of a profile field that runs on members' accounts: who, when, which field, old and new."""

    profile = models.ForeignKey(ClusterProfile, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    field = models.CharField(max_length=200, help_text="e.g. 'login_host' or 'recipe CPU: namd2 / command'.")
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.profile.slug}.{self.field} by {self.changed_by} at {self.changed_at:%Y-%m-%d %H:%M}"
