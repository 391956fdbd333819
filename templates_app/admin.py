"""Admin pages for templates: edit the body and variables; every change that validates is a new version."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from templates_app.models import Template, TemplateVersion
from templates_app.rendering import Problem, render_config
from templates_app.services import save_template_version, template_problems
from templates_app.specs import specs_from_json


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


def _shown(problem: Problem) -> str:
    where = f"{problem.file + ' ' if problem.file else ''}line {problem.line}: " if problem.line else ""
    return f"[{problem.code}] {where}{problem.message}"


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "category", "is_retired", "latest_version")
    list_filter = ("category", "is_retired")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TemplateVersionInline]
    fields = ("name", "slug", "description", "category", "is_retired", "body", "variables")
    change_form_template = "admin/templates_app/template/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="templates_app_template_preview")
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """htmx: the config the edited body renders with its defaults, or every problem with its line."""
        try:
            variables = json.loads(request.POST.get("variables") or "[]")
        except json.JSONDecodeError as exc:
            variables, problems = None, [f"variables: not JSON ({exc.msg}, line {exc.lineno})"]
        config = rendered = None
        if variables is not None:
            body = request.POST.get("body", "")
            found = template_problems(body=body, variables=variables)
            problems = [_shown(p) for p in found]
            if not found:
                rendered = render_config(body, specs_from_json(variables), {})
                config = rendered.config
        return TemplateResponse(request, "admin/templates_app/template/_preview.html", {
            "config": config, "problems": problems, "rendered": rendered,
            "warnings": [_shown(p) for p in rendered.warnings] if rendered else [],
        })  # fmt: skip

    @admin.display(description="latest version")
    def latest_version(self, template: Template) -> str:
        latest = template.versions.order_by("-number").first()
        return f"v{latest.number}" if latest else "—"

    def save_model(self, request: HttpRequest, obj: Template, form: TemplateForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        variables = form.cleaned_data["variables"]
        save_template_version(template=obj, body=form.cleaned_data["body"], variables=variables,
                              user=request.user)  # fmt: skip
