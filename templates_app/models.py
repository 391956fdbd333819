"""NAMD templates curated by admins, and their immutable versions (body + typed variables)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Template(models.Model):
    class Category(models.TextChoices):
        MINIMIZATION = "minimization", "Minimization"
        EQUILIBRATION = "equilibration", "Equilibration"
        PRODUCTION = "production", "Production"
        OTHER = "other", "Other"

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    is_retired = models.BooleanField(default=False, help_text="Retired templates are kept for past jobs, not offered.")
    family = models.CharField(
        max_length=120, blank=True, help_text="Templates made together, e.g. the stages of one CHARMM-GUI builder."
    )
    stage = models.PositiveSmallIntegerField(default=0, help_text="Order within the family.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category", "name"]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One immutable state of a template: jobs record the exact version they used."""

    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField(help_text="Jinja2 text rendering the NAMD config.")
    variables = models.JSONField(default=list, help_text="The typed variable definitions (see templates_app/specs.py).")
    workdir = models.CharField(
        max_length=100,
        blank=True,
        help_text="The folder of the job the stage runs in (CHARMM-GUI's 'namd'); its config may read one level up.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.template.slug} v{self.number}"


class TemplateAsset(models.Model):
    """A file every job of a version gets (CHARMM-GUI's toppar/), stored once by its sha256."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="assets")
    relpath = models.CharField(max_length=500, help_text="Its path in the job folder.")
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_path = models.CharField(max_length=500, help_text="The portal's copy (content-addressed, shared).")

    class Meta:
        ordering = ["version", "relpath"]
        constraints = [models.UniqueConstraint(fields=["version", "relpath"], name="asset_unique_path_per_version")]

    def __str__(self) -> str:
        return self.relpath


class Protocol(models.Model):
    """An admin-curated sequence of stages (equilibration -> production x N) a member runs as one pipeline."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    family = models.CharField(max_length=120, blank=True, help_text="The template family it was made from, if any.")
    shared_values = models.JSONField(
        default=dict, blank=True, help_text="Values every stage gets (asked once), unless a stage overrides them."
    )
    is_retired = models.BooleanField(default=False, help_text="Retired protocols are kept for past runs, not offered.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProtocolStage(models.Model):
    """One stage of a protocol: a template run `repeat` times, continuing from the stage before."""

    class Continuation(models.TextChoices):
        FIRST = "first", "Starts from the member's inputs"
        RESTART = "restart", "Restart files of the stage before (bincoordinates, binvelocities, extendedSystem)"
        CHARMM_GUI = "charmm_gui", "The stage before's output name in a variable (CHARMM-GUI's inputname)"

    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField(help_text="Order in the protocol, from 1.")
    name = models.CharField(max_length=80)
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="protocol_stages")
    repeat = models.PositiveSmallIntegerField(default=1, help_text="How many times it runs (production segments).")
    values = models.JSONField(default=dict, blank=True, help_text="This stage's values over the shared ones.")
    resources = models.JSONField(default=dict, blank=True, help_text="This stage's resources over the run's.")
    recipe_name = models.CharField(max_length=100, blank=True, help_text="Its launch recipe (empty: the run's).")
    continuation = models.CharField(max_length=12, choices=Continuation.choices, default=Continuation.RESTART)
    input_variable = models.CharField(
        max_length=60, default="inputname", blank=True, help_text="The variable CHARMM-GUI's convention sets."
    )

    class Meta:
        ordering = ["protocol", "position"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "position"], name="protocol_stage_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.protocol.slug} {self.position}: {self.name}"
