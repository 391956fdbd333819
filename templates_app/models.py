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
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.template.slug} v{self.number}"
