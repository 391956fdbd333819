"""The protocol wizard's forms: a run's title, cluster, recipe and resources (the job wizard's), the values asked
once for every stage and each stage's own overrides; and the resume form (the values to change).

A value left empty keeps what the protocol gives each stage (shown as the field's placeholder), so an untouched
form sends no value at all. A value given once is checked against every stage template that has the variable,
with the codes the services would answer. The forms never render or create anything themselves.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from clusters.models import ClusterProfile
from frontend.wizard_forms import (
    JobForm,
    WizardBoundField,
    checked_value,
    variable_help,
    variable_label,
    variable_widget,
)
from jobs.services import PipelineRequest
from portal.errors import PortalError
from templates_app.protocol_questions import AskedVariable, ProtocolQuestions
from templates_app.rendering import VariableType

SHARED_PREFIX = "shared_"
BOOLEAN_CHOICES = (("true", "on"), ("false", "off"))


def stage_field_name(position: int, name: str) -> str:
    return f"stage{position}_{name}"


def refusal_problems(error: PortalError) -> list[tuple[str, str, str]]:
    """(code, field, message) of each problem of a service's refusal: a template's (code, field, line), a
    protocol's ({field, problem} or plain text), or the refusal itself."""
    found = []
    for problem in error.details.get("problems") or [error.user_message]:
        if isinstance(problem, str):
            found.append((error.code, "", problem))
            continue
        message = problem.get("message") or problem.get("problem") or error.user_message
        if problem.get("line") is not None:
            message = f"line {problem['line']}: {message}"
        found.append((problem.get("code") or error.code, problem.get("field") or "", message))
    return found


def _asked_widget(asked: AskedVariable) -> forms.Widget:
    """The variable's widget, where empty means "as planned" (a tri-state select for an on/off value)."""
    spec = asked.spec
    keep = ("", f"as planned ({asked.planned_text})")
    if spec.type is VariableType.BOOLEAN:
        return forms.Select(choices=[keep, *BOOLEAN_CHOICES])
    if spec.type is VariableType.CHOICE:
        return forms.Select(choices=[keep, *((choice, choice) for choice in spec.choices)])
    widget = variable_widget(spec)
    widget.attrs["placeholder"] = asked.planned_text
    return widget


class AskedValueField(forms.Field):
    """A value the run asks for; empty keeps what the protocol plans; given, it passes every stage's checks."""

    def __init__(self, asked: AskedVariable, *, is_shared: bool) -> None:
        stages = ", ".join(dict.fromkeys(planned.stage_name for planned in asked.planned))
        where = f"Used by {stages}; a stage's own value wins. " if is_shared else ""
        super().__init__(
            required=asked.is_required,
            widget=_asked_widget(asked),
            label=variable_label(asked.spec),
            help_text=f"{where}{variable_help(asked.spec)} Empty: {asked.planned_text}.".strip(),
        )
        self.asked = asked

    def clean(self, value: Any) -> Any:
        if value in self.empty_values:
            if self.required:
                raise ValidationError("A value is required: no stage has one.", code="VALUE_REQUIRED")
            return None
        typed = [checked_value(spec, value) for spec in self.asked.specs]
        return typed[0]


class AskedValuesMixin:
    """The fields of `ProtocolQuestions` on a form, and the values given in them."""

    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]
    data: Any

    def add_questions(self, questions: ProtocolQuestions) -> list[str]:
        """One field per shared value, then per stage override; their names."""
        self.questions = questions
        names = []
        for asked in questions.shared:
            names.append(SHARED_PREFIX + asked.name)
            self.fields[names[-1]] = AskedValueField(asked, is_shared=True)
        for stage in questions.stages:
            for asked in stage.variables:
                names.append(stage_field_name(stage.stage.position, asked.name))
                self.fields[names[-1]] = AskedValueField(asked, is_shared=False)
        return names

    def shared_fields(self) -> list[forms.BoundField]:
        return [self[SHARED_PREFIX + asked.name] for asked in self.questions.shared]  # type: ignore[index]

    def stage_sections(self) -> list[tuple[Any, list[forms.BoundField]]]:
        """(stage questions, its bound fields) for each stage asked about."""
        return [
            (stage, [self[stage_field_name(stage.stage.position, asked.name)] for asked in stage.variables])  # type: ignore[index]
            for stage in self.questions.stages
        ]

    def _given(self, raw: bool) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        """(shared values, per-stage values) the member filled in: typed, or `raw` as typed (for a preview)."""

        def value(name: str) -> Any:
            return self.data.get(name, "") if raw else self.cleaned_data.get(name)

        shared = {asked.name: value(SHARED_PREFIX + asked.name) for asked in self.questions.shared}
        stages = {
            stage.stage.position: {
                asked.name: value(stage_field_name(stage.stage.position, asked.name)) for asked in stage.variables
            }
            for stage in self.questions.stages
        }
        given = {name: found for name, found in shared.items() if found not in (None, "")}
        per_stage = {
            position: {name: found for name, found in found_values.items() if found not in (None, "")}
            for position, found_values in stages.items()
        }
        return given, {position: found for position, found in per_stage.items() if found}

    def asked_field_name(self, variable: str) -> str | None:
        """The shared field of a variable a service named in a problem, if the form has one."""
        name = SHARED_PREFIX + variable
        return name if name in self.fields else None

    def add_portal_error(self, error: PortalError) -> None:
        """Show a service's refusal, each problem next to the field it names, else above the form."""
        for code, field, message in refusal_problems(error):
            self._add_problem(field, code, message)

    def _add_problem(self, field: str, code: str, message: str) -> None:
        self.add_error(self.asked_field_name(field), ValidationError(message, code=code))  # type: ignore[attr-defined]


class PipelineForm(AskedValuesMixin, JobForm):
    """A pipeline run's title, cluster, recipe, resources, continue-on-timeout, shared values and stage overrides."""

    refusal_text = "The run could not be created:"

    def __init__(
        self,
        data: Any = None,
        *,
        profiles: QuerySet[ClusterProfile],
        questions: ProtocolQuestions,
        check_url: str,
        sections_url: str,
        initial: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            data, profiles=profiles, specs=[], check_url=check_url, sections_url=sections_url, initial=initial
        )
        self.fields["title"].help_text = "Shown in your lists, and before each step's name; the protocol's when empty."
        self.fields["continue_on_timeout"].initial = True
        timeout = self.fields["continue_on_timeout"]
        timeout.help_text = (
            "A step SLURM stops at its walltime continues from its restart files; the next waits for it."
        )
        self.wire_live_checks(self.add_questions(questions))

    def _add_problem(self, field: str, code: str, message: str) -> None:
        """Next to the shared value it names, else where the job wizard puts it (a resource, the recipe)."""
        name = self.asked_field_name(field)
        if name is None:
            JobForm._add_problem(self, field, code, message)
        else:
            self.add_error(name, ValidationError(message, code=code))

    def pipeline_request(self, protocol_id: int) -> PipelineRequest:
        """The services' request for a valid form."""
        if self.profile is None or self.resources is None:
            raise ValueError("pipeline_request() is for a valid form only")
        values, stage_values = self._given(raw=False)
        return PipelineRequest(
            protocol_id=protocol_id,
            cluster_id=self.profile.pk,
            recipe=self.cleaned_data["recipe"],
            title=self.cleaned_data["title"],
            values=values,
            stage_values=stage_values,
            resources=self.resources,
            continue_on_timeout=self.cleaned_data["continue_on_timeout"],
        )

    def preview_request(self, protocol_id: int) -> PipelineRequest | None:
        """The request as typed so far (the preview checks each value itself); None while the cluster, recipe or
        resources are unusable."""
        recipe = self.usable_recipe()
        if self.profile is None or recipe is None or self.resources is None:
            return None
        values, stage_values = self._given(raw=True)
        return PipelineRequest(
            protocol_id=protocol_id,
            cluster_id=self.profile.pk,
            recipe=recipe.name,
            title=self.cleaned_data.get("title") or "",
            values=values,
            stage_values=stage_values,
            resources=self.resources,
        )


class ResumeForm(AskedValuesMixin, forms.Form):
    """The values to change before a run resumes from the step that did not complete; empty keeps the run's."""

    bound_field_class = WizardBoundField
    refusal_text = "The run could not be resumed:"

    def __init__(self, data: Any = None, *, questions: ProtocolQuestions) -> None:
        super().__init__(data)
        self.add_questions(questions)

    def resume_values(self) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        """(shared values, per-stage values) to change, for a valid form."""
        return self._given(raw=False)
