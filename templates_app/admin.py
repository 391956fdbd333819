"""Admin pages for templates: edit the body and variables; every change that validates is a new version.

Also the "Import CHARMM-GUI" page: an uploaded CHARMM-GUI download becomes one template per stage and their
protocol; and protocols, edited with their stages and saved whole only when they make a usable protocol.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import construct_change_message
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from jobs.archives import archive_kind
from portal.errors import InvalidInput, PortalError
from templates_app.charmm_gui import MAX_FAMILY_LENGTH, family_protocol, import_charmm_gui
from templates_app.models import Protocol, ProtocolStage, Template, TemplateVersion
from templates_app.protocol_services import protocol_draft_problems, save_protocol, stage_rules, stages_text
from templates_app.protocols import MAX_STEPS, plan_steps
from templates_app.rendering import Problem, render_config
from templates_app.services import save_template_version, template_problems
from templates_app.specs import specs_from_json

PROTOCOL_PERMISSIONS = ("templates_app.add_protocol", "templates_app.change_protocol")


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
    production_repeats = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_STEPS,
        help_text="Optional: how many times the family's protocol runs the last production stage (CHARMM-GUI's "
        "runner: 10). Empty: as the protocol had it, or once.",
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
    protocol = family_protocol(templates[0].family)
    return (
        f"Imported {len(templates)} CHARMM-GUI stage templates: "
        + "; ".join(shown)
        + f". Protocol '{protocol.name}': {stages_text(protocol)}"
    )


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
        """A CHARMM-GUI download as one template per stage and their protocol; the coded refusal, or the changelist."""
        if not (self.has_add_permission(request) and request.user.has_perms(PROTOCOL_PERMISSIONS)):
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
                        source=archive,
                        user=request.user,
                        family=form.cleaned_data["family"] or None,
                        production_repeats=form.cleaned_data["production_repeats"],
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


# ------------------------------------------------------------------ protocols and their stages

JSON_WIDGET = forms.Textarea(attrs={"rows": 3, "cols": 40, "style": "font-family: monospace"})


class ProtocolStageFormSet(BaseInlineFormSet):
    """The stages, checked whole with the protocol's shared values (the services' rule) before anything is saved."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        problems = protocol_draft_problems(shared_values=self.instance.shared_values, stages=self.drafts())
        if problems:
            raise forms.ValidationError([f"[PROTOCOL_INVALID] {problem['problem']}" for problem in problems])

    def drafts(self) -> list[ProtocolStage]:
        """The stages as edited: neither the ones marked for deletion nor empty extra rows."""
        return [form.instance for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]


class ProtocolStageInline(admin.TabularInline):
    model = ProtocolStage
    formset = ProtocolStageFormSet
    fields = (
        "position",
        "name",
        "template",
        "repeat",
        "continuation",
        "input_variable",
        "values",
        "resources",
        "recipe_name",
    )
    ordering = ("position",)
    extra = 1
    formfield_overrides = {models.JSONField: {"widget": JSON_WIDGET}}

    # The stages are part of their protocol: whoever may edit the protocol edits its stages.
    def has_add_permission(self, request: HttpRequest, obj: Protocol | None = None) -> bool:
        return _may_edit_protocol(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Protocol | None = None) -> bool:
        return _may_edit_protocol(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Protocol | None = None) -> bool:
        return _may_edit_protocol(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Protocol | None = None) -> bool:
        return request.user.has_perm("templates_app.view_protocol") or _may_edit_protocol(request, obj)


def _may_edit_protocol(request: HttpRequest, protocol: Protocol | None) -> bool:
    return request.user.has_perm("templates_app.change_protocol" if protocol else "templates_app.add_protocol")


@admin.register(Protocol)
class ProtocolAdmin(admin.ModelAdmin):
    list_display = ("name", "family", "stage_list", "is_retired")
    list_filter = ("family", "is_retired")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fields = ("name", "slug", "description", "family", "shared_values", "is_retired", "planned_steps")
    readonly_fields = ("planned_steps",)
    inlines = [ProtocolStageInline]
    formfield_overrides = {models.JSONField: {"widget": JSON_WIDGET}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Protocol]:
        return super().get_queryset(request).prefetch_related("stages")

    @admin.display(description="stages")
    def stage_list(self, protocol: Protocol) -> str:
        return stages_text(protocol)

    @admin.display(description="planned steps")
    def planned_steps(self, protocol: Protocol) -> SafeString | str:
        """Each step a run makes, with the output name it writes (from the templates' latest versions)."""
        if protocol.pk is None:
            return "—"
        try:
            steps = plan_steps(stage_rules(protocol))
        except InvalidInput as exc:
            return exc.user_message
        return format_html_join(
            mark_safe("<br>"), "{}. {} → {}", ((step.position, step.label, step.output_name) for step in steps)
        )

    def save_model(self, request: HttpRequest, obj: Protocol, form: forms.ModelForm, change: bool) -> None:
        """Nothing yet: `save_related` saves the protocol with its stages, as one."""

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: list[ProtocolStageFormSet], change: bool
    ) -> None:
        (stages,) = formsets
        save_protocol(protocol=form.instance, stages=stages.drafts())

    def construct_change_message(
        self, request: HttpRequest, form: forms.ModelForm, formsets: list[ProtocolStageFormSet], add: bool = False
    ) -> list[dict[str, Any]]:
        # the stages are saved in place of the old ones (save_protocol), not form by form: say they changed
        message = construct_change_message(form, [], add)
        if not add and any(formset.has_changed() for formset in formsets):
            message.append({"changed": {"fields": ["stages"]}})
        return message
