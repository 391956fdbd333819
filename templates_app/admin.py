"""Admin pages for templates: edit the body and variables; every change that validates is a new version."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from templates_app.models import Template, TemplateVersion
from templates_app.services import save_template_version, template_problems


class TemplateForm(forms.ModelForm):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"}))
    variables = forms.JSONField(
        initial=list,
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100, "style": "font-family: monospace"}),
        help_text="A list of variable definitions: name, type (integer, float, text, boolean, choice, file), "
        "default, help, minimum, maximum, unit, pattern, choices, extensions, required, namd_keyword.",
    )

    class Meta:
        model = Template
        fields = ["name", "slug", "description", "category", "is_retired"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        latest = self.instance.versions.order_by("-number").first() if self.instance.pk else None
        if latest is not None:
            self.fields["body"].initial = latest.body
            self.fields["variables"].initial = latest.variables

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "body" in cleaned and "variables" in cleaned:
            problems = template_problems(body=cleaned["body"], variables=cleaned["variables"])
            for problem in problems:
                where = f"line {problem.line}: " if problem.line else (f"{problem.field}: " if problem.field else "")
                target = "variables" if problem.code.startswith(("VARIABLE_", "VALUE_")) else "body"
                self.add_error(target, f"[{problem.code}] {where}{problem.message}")
        return cleaned


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("number", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "category", "is_retired", "latest_version")
    list_filter = ("category", "is_retired")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TemplateVersionInline]
    fields = ("name", "slug", "description", "category", "is_retired", "body", "variables")

    @admin.display(description="latest version")
    def latest_version(self, template: Template) -> str:
        latest = template.versions.order_by("-number").first()
        return f"v{latest.number}" if latest else "—"

    def save_model(self, request: HttpRequest, obj: Template, form: TemplateForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        variables = form.cleaned_data["variables"]
        save_template_version(template=obj, body=form.cleaned_data["body"], variables=variables,
                              user=request.user)  # fmt: skip
