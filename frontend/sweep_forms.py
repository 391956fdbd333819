"""The sweep wizard's forms: the job wizard's fields (a template) or the protocol wizard's (a protocol), and what
makes them a sweep: the mode (grid, list or replicas), the swept variables each with its values, the number of
replicas and their base seed, how many points may run at once, and whether to start once the inputs are in.

Each swept value is typed and checked as its variable is (`checked_value`: every stage's definition for a
protocol's shared value), and the points are planned by the services' own rule (`jobs.services.plan_points`) as
the member types, so a refusal (SWEEP_TOO_MANY_POINTS, SWEEP_AXES_UNEQUAL, SWEEP_NO_SEED_VARIABLE...) shows next
to the field it concerns with the code creation would answer. A swept variable needs no value of its own: each
point's replaces it. The forms never render or create anything themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from frontend.pipeline_forms import SHARED_PREFIX, PipelineForm, refusal_problems
from frontend.wizard_forms import VARIABLE_PREFIX, JobForm, checked_value, variable_label
from jobs.models import Sweep
from jobs.services import SweepRequest, plan_points
from jobs.sweep_points import MAX_POINTS, SEED_VARIABLE, SweepAxis, SweepPlan, point_label
from portal.errors import InvalidInput, PortalError
from templates_app.rendering import VariableSpec, VariableType

AXES_FIELD = "axis_rows"  # the number of axis rows shown; its error slot holds what concerns the axes together
MAX_AXES = 16  # as the API takes
DEFAULT_AXIS_ROWS = 2
REPLICAS = Sweep.Mode.REPLICAS
VALUE_SEPARATORS = re.compile(r"[,\n]")
# Where a refusal of the point plan belongs; the axis codes go to the row they name (see _sweep_field).
SWEEP_FIELD_BY_CODE = {
    "SWEEP_MODE_UNKNOWN": "mode",
    "SWEEP_NO_SEED_VARIABLE": "mode",
    "SWEEP_REPLICAS_INVALID": "replicas",
    "SWEEP_BASE_SEED_INVALID": "base_seed",
    "SWEEP_MAX_RUNNING_INVALID": "max_running",
    "SWEEP_NO_AXES": AXES_FIELD,
    "SWEEP_AXES_UNEQUAL": AXES_FIELD,
    "SWEEP_POINTS_REPEAT": AXES_FIELD,
    "SWEEP_TOO_MANY_POINTS": AXES_FIELD,
}


def axis_name_field(row: int) -> str:
    return f"axis{row}_name"


def axis_values_field(row: int) -> str:
    return f"axis{row}_values"


def split_values(text: str) -> list[str]:
    """The values of an axis as typed: separated by commas or new lines."""
    return [part.strip() for part in VALUE_SEPARATORS.split(text) if part.strip()]


@dataclass(frozen=True)
class SweepVariable:
    """A variable a sweep may take as an axis: its definitions (every stage's that has it, for a protocol)."""

    name: str
    specs: list[VariableSpec]

    @property
    def label(self) -> str:
        return variable_label(self.specs[0])

    def typed(self, text: str) -> Any:
        """The value as the variable takes it, checked by every definition. Raises ValidationError."""
        try:
            typed = [checked_value(spec, text) for spec in self.specs]  # every definition, not just the first
            return typed[0]
        except ValidationError as exc:
            raise ValidationError(
                [ValidationError(f"{text}: {' '.join(error.messages)}", code=error.code) for error in exc.error_list]
            ) from exc


@dataclass(frozen=True)
class AxisRow:
    """One row of the axes section: its two bound fields."""

    index: int
    name: forms.BoundField
    values: forms.BoundField


class SweepFieldsMixin:
    """The sweep's own fields on a wizard form, its axes typed, its points planned."""

    fields: dict[str, forms.Field]
    data: Any
    initial: dict[str, Any]
    cleaned_data: dict[str, Any]
    _errors: Any
    base_prefix: str  # the name of a variable's own field is this prefix and the variable's name
    refusal_text = "The sweep could not be created:"

    def add_sweep_fields(self, variables: list[SweepVariable], *, add_axis: bool = False) -> None:
        self.sweep_variables = {variable.name: variable for variable in variables}
        self.axis_row_count = self._axis_row_count(add_axis)
        self.plan: SweepPlan | None = None
        self.axes: tuple[SweepAxis, ...] = ()
        self._axis_row_of: list[int] = []  # the row each planned axis came from
        self.fields["mode"] = forms.ChoiceField(
            choices=Sweep.Mode.choices, initial=Sweep.Mode.GRID, widget=forms.RadioSelect, label="How to make them"
        )
        self.fields[AXES_FIELD] = forms.IntegerField(
            widget=forms.HiddenInput, required=False, label="Swept variables", initial=self.axis_row_count
        )
        self.initial[AXES_FIELD] = self.axis_row_count  # one more after "Add a variable"
        choices = [("", "Choose a variable"), *((variable.name, variable.label) for variable in variables)]
        for row in range(self.axis_row_count):
            self.fields[axis_name_field(row)] = forms.ChoiceField(
                choices=choices, required=False, label=f"Variable {row + 1}"
            )
            self.fields[axis_values_field(row)] = forms.CharField(
                required=False,
                max_length=20_000,
                label=f"Values of variable {row + 1}",
                help_text="" if row else "Separated by commas, e.g. 300, 310, 320; each is checked as the variable is.",
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )
        self.fields["replicas"] = forms.IntegerField(
            required=False,
            label="Replicas",
            help_text=f"How many points, each with its own seed (at most {MAX_POINTS}).",
        )
        self.fields["base_seed"] = forms.IntegerField(
            required=False,
            label="Base seed",
            help_text="The replicas' seeds are drawn from it: the same base seed always gives the same seeds.",
        )
        self.fields["max_running"] = forms.IntegerField(
            required=False,
            min_value=1,
            max_value=MAX_POINTS,
            label="At most this many points at once",
            help_text="Submitted and not finished; the next starts when one ends. Empty: no limit.",
        )
        self.fields["submit"] = forms.BooleanField(
            required=False,
            label="Submit the points as soon as the inputs are on the cluster",
            help_text="Otherwise submit the sweep from its page once its inputs are in.",
        )
        sweep_fields = ["mode", "replicas", "base_seed", "max_running", "submit"]
        for row in range(self.axis_row_count):
            sweep_fields += [axis_name_field(row), axis_values_field(row)]
        self.wire_live_checks(sweep_fields)  # type: ignore[attr-defined]

    def _axis_row_count(self, add_axis: bool) -> int:
        """The rows shown: as many as the page had (the hidden count), one more when asked."""
        source = self.data if self.data else self.initial
        raw = str(source.get(AXES_FIELD) or "")
        rows = int(raw) if raw.isdigit() and len(raw) < 3 else DEFAULT_AXIS_ROWS
        return max(1, min(MAX_AXES, rows + (1 if add_axis else 0)))

    @property
    def can_add_axis(self) -> bool:
        return self.axis_row_count < MAX_AXES

    def axis_row_fields(self) -> list[AxisRow]:
        return [
            AxisRow(row, self[axis_name_field(row)], self[axis_values_field(row)])  # type: ignore[index]
            for row in range(self.axis_row_count)
        ]

    # ------------------------------------------------------------------ cleaning

    def clean_sweep(self) -> None:
        """The axes typed and the points planned (`self.plan`), each refusal next to its field."""
        mode = self.cleaned_data.get("mode")
        if mode is None:
            return
        axes = () if mode == REPLICAS else self._typed_axes()
        if axes is None:
            return
        self.axes = axes
        try:
            self.plan = plan_points(
                [spec for variable in self.sweep_variables.values() for spec in variable.specs],
                mode=mode,
                axes=axes,
                replicas=self.cleaned_data.get("replicas") if mode == REPLICAS else None,
                base_seed=self.cleaned_data.get("base_seed") if mode == REPLICAS else None,
            )
        except InvalidInput as exc:
            self._add_sweep_refusal(exc)
        for name in self.swept_names():  # each point gives its own value: the variable's own field may be empty
            self._errors.pop(self.base_prefix + name, None)

    def swept_names(self) -> list[str]:
        if self.cleaned_data.get("mode") == REPLICAS:
            return [SEED_VARIABLE]
        return [axis.name for axis in self.axes]

    def _typed_axes(self) -> tuple[SweepAxis, ...] | None:
        """Each filled row as an axis of typed values; None when a value or a row is wrong."""
        axes, rows, is_valid = [], [], True
        for row in range(self.axis_row_count):
            name = self.cleaned_data.get(axis_name_field(row)) or ""
            texts = split_values(self.cleaned_data.get(axis_values_field(row)) or "")
            if not name and not texts:
                continue
            if not name:
                message = "Choose the variable these values are for."
                self.add_error(axis_name_field(row), ValidationError(message, code="VALUE_REQUIRED"))  # type: ignore[attr-defined]
                is_valid = False
                continue
            values = []
            for text in texts:
                try:
                    values.append(self.sweep_variables[name].typed(text))
                except ValidationError as exc:
                    self.add_error(axis_values_field(row), exc)  # type: ignore[attr-defined]
                    is_valid = False
            axes.append(SweepAxis(name, tuple(values)))
            rows.append(row)
        self._axis_row_of = rows
        return tuple(axes) if is_valid else None

    # ------------------------------------------------------------------ refusals

    def _sweep_field(self, code: str, details: dict[str, Any]) -> str | None:
        """The field a refusal of the point plan belongs to: an axis row's for what names one axis."""
        names = [axis.name for axis in self.axes]
        rows = self._axis_row_of
        if code == "SWEEP_AXIS_UNKNOWN" and details.get("axis") in names:
            return axis_name_field(rows[names.index(details["axis"])])
        if code == "SWEEP_AXIS_DUPLICATE":
            repeated = next((i for i, name in enumerate(names) if name in names[:i]), None)
            return axis_name_field(rows[repeated]) if repeated is not None else AXES_FIELD
        if code == "SWEEP_AXIS_EMPTY":
            empty = next((i for i, axis in enumerate(self.axes) if not axis.values), None)
            return axis_values_field(rows[empty]) if empty is not None else AXES_FIELD
        if code == "SWEEP_TOO_MANY_POINTS" and self.cleaned_data.get("mode") == REPLICAS:
            return "replicas"
        return SWEEP_FIELD_BY_CODE.get(code)

    def _add_sweep_refusal(self, error: InvalidInput) -> None:
        field = self._sweep_field(error.code, error.details)
        self.add_error(field, ValidationError(error.user_message, code=error.code))  # type: ignore[attr-defined]

    def add_portal_error(self, error: PortalError) -> None:
        """A refusal of the services: the plan's next to its field; a point's (its rendering refused) next to the
        swept variable it names, else where the wizard puts it, saying which point; any other as the wizard does."""
        if error.code.startswith("SWEEP_") and isinstance(error, InvalidInput):
            self._add_sweep_refusal(error)
            return
        point = error.details.get("point")
        if point is None or not error.details.get("problems"):
            super().add_portal_error(error)  # type: ignore[misc]
            return
        said = f"Point {point} ({point_label(error.details.get('point_values') or {})[:200]}): "
        names = [axis.name for axis in self.axes]
        for code, field, message in refusal_problems(error):
            if field in names:
                row = self._axis_row_of[names.index(field)]
                self.add_error(axis_values_field(row), ValidationError(said + message, code=code))  # type: ignore[attr-defined]
            else:
                self._add_problem(field, code, said + message)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the services' request

    def sweep_fields(self) -> dict[str, Any]:
        """The sweep's part of the services' request, for a form whose points were planned."""
        cleaned = self.cleaned_data
        is_replicas = cleaned["mode"] == REPLICAS
        return {
            "mode": cleaned["mode"],
            "axes": self.axes,
            "replicas": cleaned.get("replicas") if is_replicas else None,
            "base_seed": cleaned.get("base_seed") if is_replicas else None,
            "max_running": cleaned.get("max_running"),
            "submit": bool(cleaned.get("submit")),
        }


class TemplateSweepForm(SweepFieldsMixin, JobForm):
    """A template's sweep: the job wizard's title, cluster, recipe, resources and values, and the sweep's fields."""

    base_prefix = VARIABLE_PREFIX

    def __init__(self, *args: Any, add_axis: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["continue_on_timeout"]  # a sweep's points do not continue after a timeout
        self.fields["title"].help_text = "The sweep's name; each point's job adds its index and values."
        variables = [SweepVariable(spec.name, [spec]) for spec in self.specs]
        self.add_sweep_fields(variables, add_axis=add_axis)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.clean_sweep()
        return cleaned

    def sweep_request(self, template_id: int) -> SweepRequest:
        """The services' request for a valid form."""
        if self.profile is None or self.resources is None:
            raise ValueError("sweep_request() is for a valid form only")
        swept = self.swept_names()
        cleaned = self.cleaned_data
        values = {spec.name: cleaned.get(VARIABLE_PREFIX + spec.name) for spec in self.specs if spec.name not in swept}
        return SweepRequest(
            template_id=template_id,
            cluster_id=self.profile.pk,
            recipe=self.cleaned_data["recipe"],
            title=self.cleaned_data["title"],
            values=values,
            resources=self.resources,
            **self.sweep_fields(),
        )

    def preview_request(self, template_id: int) -> SweepRequest | None:
        """The request as typed so far (the preview checks each value itself); None while the cluster, recipe,
        resources or the points are unusable."""
        recipe = self.usable_recipe()
        if recipe is None or self.plan is None:
            return None
        return SweepRequest(
            template_id=template_id,
            cluster_id=self.profile.pk,  # type: ignore[union-attr]
            recipe=recipe.name,
            title=self.cleaned_data.get("title") or "",
            values={spec.name: self[VARIABLE_PREFIX + spec.name].data for spec in self.specs},
            resources=self.resources,  # type: ignore[arg-type]
            **self.sweep_fields(),
        )


class ProtocolSweepForm(SweepFieldsMixin, PipelineForm):
    """A protocol's sweep: the protocol wizard's fields (values asked once, per-stage overrides), and the sweep's;
    a swept variable is one of the values asked once, reaching every stage that has it."""

    base_prefix = SHARED_PREFIX

    def __init__(self, *args: Any, add_axis: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["continue_on_timeout"]  # a sweep's runs continue after a timeout, as a run does by default
        self.fields["title"].help_text = "The sweep's name; each point's run adds its index and values."
        variables = [
            SweepVariable(asked.name, asked.specs)
            for asked in self.questions.shared
            if asked.spec.type is not VariableType.FILE
        ]
        self.add_sweep_fields(variables, add_axis=add_axis)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.clean_sweep()
        return cleaned

    def _request(self, protocol_id: int, *, recipe: str, title: str, raw: bool) -> SweepRequest:
        values, stage_values = self._given(raw=raw)
        return SweepRequest(
            protocol_id=protocol_id,
            cluster_id=self.profile.pk,  # type: ignore[union-attr]
            recipe=recipe,
            title=title,
            values={name: value for name, value in values.items() if raw or name not in self.swept_names()},
            stage_values=stage_values,
            resources=self.resources,  # type: ignore[arg-type]
            **self.sweep_fields(),
        )

    def sweep_request(self, protocol_id: int) -> SweepRequest:
        """The services' request for a valid form."""
        if self.profile is None or self.resources is None:
            raise ValueError("sweep_request() is for a valid form only")
        return self._request(
            protocol_id, recipe=self.cleaned_data["recipe"], title=self.cleaned_data["title"], raw=False
        )

    def preview_request(self, protocol_id: int) -> SweepRequest | None:  # type: ignore[override]
        """The request as typed so far; None while the cluster, recipe, resources or the points are unusable."""
        recipe = self.usable_recipe()
        if recipe is None or self.plan is None:
            return None
        return self._request(protocol_id, recipe=recipe.name, title=self.cleaned_data.get("title") or "", raw=True)
