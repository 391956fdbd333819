"""Admin pages for templates: edit the body and variables; every change that validates is a new version.

Also the "Import CHARMM-GUI" page: an uploaded CHARMM-GUI download becomes one template per stage.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from jobs.archives import archive_kind
from portal.errors import PortalError
from templates_app.charmm_gui import MAX_FAMILY_LENGTH, import_charmm_gui
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


class CharmmGuiImportForm(forms.Form):
    archive = forms.FileField(
        help_text="The NAMD download CHARMM-GUI gives: charmm-gui-….tgz (or .tar.gz, .zip), with its namd/ folder."
    )
    family = forms.CharField(
        required=False,
        max_length=MAX_FAMILY_LENGTH,
        help_text="Optional: the template family. Empty: the builder, e.g. CHARMM-GUI Solution Builder.",
    )

    def clean_archive(self) -> Any:
        archive = self.cleaned_data["archive"]
        if archive_kind(archive.name) is None:
            raise forms.ValidationError("[CHARMM_GUI_NOT_AN_ARCHIVE] Upload the .tgz, .tar.gz or .zip CHARMM-GUI gave.")
        return archive


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("number", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _imported_message(templates: list[Template], *, since: Any) -> str:
    shown = []
    for template in templates:
        latest = template.versions.order_by("-number").first()
        shown.append(f"{template.name} v{latest.number}" + (" (unchanged)" if latest.created_at < since else ""))
    return f"Imported {len(templates)} CHARMM-GUI stage templates: " + "; ".join(shown)


def _shown(problem: Problem) -> str:
    where = f"{problem.file + ' ' if problem.file else ''}line {problem.line}: " if problem.line else ""
    return f"[{problem.code}] {where}{problem.message}"


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "family", "stage", "category", "is_retired", "latest_version")
    list_filter = ("family", "category", "is_retired")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TemplateVersionInline]
    fields = ("name", "slug", "description", "category", "is_retired", "body", "variables")
    change_form_template = "admin/templates_app/template/change_form.html"
    change_list_template = "admin/templates_app/template/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="templates_app_template_preview")
        charmm_gui = path(
            "import-charmm-gui/",
            self.admin_site.admin_view(self.import_charmm_gui_view),
            name="templates_app_template_import_charmm_gui",
        )
        return [preview, charmm_gui, *super().get_urls()]

    def import_charmm_gui_view(self, request: HttpRequest) -> HttpResponse:
        """A CHARMM-GUI download as one template per stage; the coded refusal, or the changelist with the list."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        is_post = request.method == "POST"
        form = CharmmGuiImportForm(request.POST, request.FILES) if is_post else CharmmGuiImportForm()
        refusal = None
        if is_post and form.is_valid():
            upload = form.cleaned_data["archive"]
            started = timezone.now()
            try:
                with tempfile.TemporaryDirectory(prefix="charmm-gui-upload-") as scratch:
                    archive = Path(scratch) / f"download.{archive_kind(upload.name)}"
                    with archive.open("wb") as out:
                        for chunk in upload.chunks():
                            out.write(chunk)
                    templates = import_charmm_gui(
                        source=archive, user=request.user, family=form.cleaned_data["family"] or None
                    )
            except PortalError as exc:
                refusal = exc
            else:
                self.message_user(request, _imported_message(templates, since=started), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:templates_app_template_changelist"))
        return TemplateResponse(
            request,
            "admin/templates_app/template/import_charmm_gui.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Import CHARMM-GUI",
                "form": form,
                "refusal": refusal,
            },
        )

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
        return TemplateResponse(
            request,
            "admin/templates_app/template/_preview.html",
            {
                "config": config,
                "problems": problems,
                "rendered": rendered,
                "warnings": [_shown(p) for p in rendered.warnings] if rendered else [],
            },
        )

    @admin.display(description="latest version")
    def latest_version(self, template: Template) -> str:
        latest = template.versions.order_by("-number").first()
        return f"v{latest.number}" if latest else "—"

    def save_model(self, request: HttpRequest, obj: Template, form: TemplateForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        variables = form.cleaned_data["variables"]
        save_template_version(template=obj, body=form.cleaned_data["body"], variables=variables, user=request.user)
