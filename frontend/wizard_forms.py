"""The new-job wizard's form: title, cluster, launch recipe, resources, and one field per template variable.

Every value is checked by the rules the job services apply (`rendering.coerce_value` for variables,
`batch_script.check_resources` against the chosen partition), so an error shows next to its field with
the code the API would return. The form never renders or submits anything itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.boundfield import BoundField

from clusters.models import ClusterProfile, LaunchRecipe, Partition
from jobs.services import JobRequest
from portal.errors import PortalError
from templates_app import batch_script
from templates_app.rendering import TemplateProblems, VariableSpec, VariableType, coerce_value
from templates_app.services import cluster_settings

VARIABLE_PREFIX = "var_"
WALLTIME_RE = re.compile(r"([0-9]{1,4}):([0-5][0-9]):([0-5][0-9])", re.ASCII)
LIVE_CHECK_TRIGGER = "input changed delay:400ms, change"
# Where a problem found by the services belongs on the page; any other goes above the form.
FIELD_BY_CODE = {
    "TIME_OVER_LIMIT": "walltime",
    "NODES_OVER_LIMIT": "nodes",
    "CORES_OVER_LIMIT": "cpus_per_task",
    "MEMORY_OVER_LIMIT": "memory_mb",
    "GPUS_UNAVAILABLE": "gpus",
    "PARTITION_UNKNOWN": "partition",
    "ACCOUNT_NOT_ALLOWED": "account",
    "QOS_NOT_ALLOWED": "qos",
    "CLUSTER_NOT_FOUND": "cluster",
    "RECIPE_NOT_FOUND": "recipe",
    "LAUNCH_COMMAND_INVALID": "recipe",
    "CONTAINER_IMAGE_INVALID": "recipe",
}
# Django's own field errors, named like the portal's codes.
DJANGO_CODES = {
    "required": "VALUE_REQUIRED",
    "invalid": "VALUE_WRONG_TYPE",
    "min_value": "VALUE_OUT_OF_RANGE",
    "max_value": "VALUE_OUT_OF_RANGE",
    "max_length": "VALUE_TOO_LONG",
    "invalid_choice": "VALUE_NOT_A_CHOICE",
}


def format_walltime(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class WizardBoundField(BoundField):
    """A field whose error slot is always on the page (filled by the live check) and described by it."""

    @property
    def error_id(self) -> str:
        return f"{self.auto_id}_error"

    @property
    def help_id(self) -> str:
        return f"{self.auto_id}_helptext"

    @property
    def aria_describedby(self) -> str:
        return " ".join([self.help_id, self.error_id] if self.help_text else [self.error_id])

    @property
    def error_items(self) -> list[tuple[str, str]]:
        """(message, code) of each error, codes as the portal names them."""
        found = self.form.errors.as_data().get(self.name, [])
        return [
            (" ".join(error.messages), DJANGO_CODES.get(error.code or "", error.code or "INVALID")) for error in found
        ]

    @property
    def is_checkbox(self) -> bool:
        return isinstance(self.field.widget, forms.CheckboxInput)


class WalltimeField(forms.CharField):
    """hh:mm:ss, cleaned to seconds."""

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        match = WALLTIME_RE.fullmatch(text)
        if match is None:
            raise ValidationError("Write hours:minutes:seconds, e.g. 02:30:00.", code="WALLTIME_INVALID")
        hours, minutes, seconds = (int(part) for part in match.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if total < batch_script.MIN_WALLTIME_S:
            raise ValidationError("The walltime must be at least 00:01:00.", code="RESOURCE_INVALID")
        return total


def variable_widget(spec: VariableSpec) -> forms.Widget:
    if spec.type is VariableType.BOOLEAN:
        return forms.CheckboxInput()
    if spec.type is VariableType.CHOICE:
        return forms.Select(choices=[(choice, choice) for choice in spec.choices])
    if spec.type in (VariableType.INTEGER, VariableType.FLOAT):
        attrs: dict[str, Any] = {"step": "1" if spec.type is VariableType.INTEGER else "any"}
        attrs |= {
            key: _number_text(limit)
            for key, limit in (("min", spec.minimum), ("max", spec.maximum))
            if limit is not None
        }
        return forms.NumberInput(attrs=attrs)
    return forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})


def variable_help(spec: VariableSpec) -> str:
    parts = [spec.help] if spec.help else []
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.minimum is not None and spec.maximum is not None:
        parts.append(f"From {_number_text(spec.minimum)} to {_number_text(spec.maximum)}{unit}.")
    if spec.type is VariableType.FILE:
        endings = f" ending in {' or '.join(spec.extensions)}" if spec.extensions else ""
        parts.append(f"A file name{endings}: the config reads it, you upload it in the next step.")
    if spec.type is VariableType.TEXT and spec.pattern:
        parts.append(f"Must match {spec.pattern}.")
    if not spec.required and spec.type is not VariableType.BOOLEAN:
        parts.append("Leave it empty to do without.")
    return " ".join(parts)


def variable_label(spec: VariableSpec) -> str:
    """'Temperature (K)': the variable's name in words, with its unit."""
    words = spec.name.replace("_", " ")
    unit = f" ({spec.unit})" if spec.unit and spec.unit.lower() not in words else ""
    return words.capitalize() + unit


def checked_value(spec: VariableSpec, value: Any) -> Any:
    """`coerce_value`, its problems as the field's errors (without the variable's name). Raises ValidationError."""
    try:
        return coerce_value(spec, value)
    except TemplateProblems as exc:
        prefix = f"{spec.name}: "
        raise ValidationError(
            [ValidationError(problem.message.removeprefix(prefix), code=problem.code) for problem in exc.problems]
        ) from exc


class VariableField(forms.Field):
    """One template variable: a widget for its type, its value checked by `rendering.coerce_value`."""

    def __init__(self, spec: VariableSpec) -> None:
        # `required` only marks the input: coerce_value decides, with the portal's codes.
        is_required = spec.required and spec.type is not VariableType.BOOLEAN
        super().__init__(
            required=is_required,
            widget=variable_widget(spec),
            label=variable_label(spec),
            help_text=variable_help(spec),
            initial=spec.default,
        )
        self.spec = spec

    def clean(self, value: Any) -> Any:
        return checked_value(self.spec, value)


@dataclass(frozen=True)
class PartitionRow:
    """A partition's limits as the resources section shows them."""

    name: str
    is_default: bool
    max_walltime: str
    max_nodes: str
    cores_per_node: int
    memory_per_node: str
    gpus_per_node: int

    @classmethod
    def of(cls, partition: Partition) -> PartitionRow:
        return cls(
            name=partition.name,
            is_default=partition.is_default,
            max_walltime=format_walltime(partition.max_walltime_s) if partition.max_walltime_s else "no limit",
            max_nodes=str(partition.max_nodes or "no limit"),
            cores_per_node=partition.cores_per_node,
            memory_per_node=f"{partition.memory_per_node_mb} MB" if partition.memory_per_node_mb else "no limit",
            gpus_per_node=partition.gpus_per_node,
        )

    @property
    def label(self) -> str:
        gpus = f", {self.gpus_per_node} GPUs" if self.gpus_per_node else ""
        return f"{self.name}: at most {self.max_walltime}, {self.cores_per_node} cores per node{gpus}"


class JobForm(forms.Form):
    """A job's title, cluster, launch recipe, resources and template values; cross-checked against the partition."""

    bound_field_class = WizardBoundField
    title = forms.CharField(
        max_length=200, required=False, help_text="Shown in your job list; the template's name when empty."
    )
    cluster = forms.ModelChoiceField(queryset=ClusterProfile.objects.none(), empty_label=None)
    recipe = forms.ChoiceField(label="Launch recipe", help_text="How the cluster starts NAMD.")
    partition = forms.ChoiceField()
    nodes = forms.IntegerField(min_value=1, initial=1)
    ntasks_per_node = forms.IntegerField(min_value=1, initial=1, label="Tasks per node")
    cpus_per_task = forms.IntegerField(min_value=1, initial=1, label="CPUs per task")
    memory_mb = forms.IntegerField(
        min_value=1, required=False, label="Memory per node (MB)", help_text="Empty: the partition's default."
    )
    walltime = WalltimeField(
        initial="01:00:00",
        label="Walltime (hh:mm:ss)",
        help_text="e.g. 00:30:00 for 30 min.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "placeholder": "hh:mm:ss"}),
    )
    gpus = forms.IntegerField(min_value=0, initial=0, label="GPUs per node")
    account = forms.ChoiceField(required=False, label="SLURM account")
    qos = forms.ChoiceField(required=False, label="QOS")
    continue_on_timeout = forms.BooleanField(
        required=False,
        label="Continue automatically if SLURM stops it at the walltime",
        help_text="A continuation starts from its restart files, up to 10 times.",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        profiles: QuerySet[ClusterProfile],
        specs: list[VariableSpec],
        check_url: str,
        sections_url: str,
        initial: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data, initial=initial)
        # files are asked for as files on the inputs step (their paths are the template's): not as names here
        self.specs = [spec for spec in specs if spec.type is not VariableType.FILE]
        self.resources: batch_script.Resources | None = None  # set by clean(), even when a limit is broken
        cast(forms.ModelChoiceField, self.fields["cluster"]).queryset = profiles
        self.profile = self._chosen_profile(profiles)
        partitions = list(self.profile.partitions.all()) if self.profile else []
        self.recipes: list[LaunchRecipe] = list(self.profile.launch_recipes.all()) if self.profile else []
        self.partition_rows = [PartitionRow.of(partition) for partition in partitions]
        self._offer(
            "partition",
            [(row.name, row.label) for row in self.partition_rows],
            next((p.name for p in partitions if p.is_default), None),
        )
        self._offer(
            "recipe",
            [(r.name, f"{r.name}: {r.get_kind_display()}") for r in self.recipes],
            next((r.name for r in self.recipes if r.is_default), None),
        )
        for name, allowed in (
            ("account", self.profile.allowed_accounts if self.profile else []),
            ("qos", self.profile.allowed_qos if self.profile else []),
        ):
            if allowed:
                self._offer(name, [("", "Your default"), *((value, value) for value in allowed)], "")
            else:
                del self.fields[name]
        for spec in self.specs:
            self.fields[VARIABLE_PREFIX + spec.name] = VariableField(spec)
        self.check_url = check_url
        self.wire_live_checks(name for name in self.fields if name != "cluster")
        self.fields["cluster"].widget.attrs.update(
            {
                "hx-get": sections_url,
                "hx-trigger": "change",
                "hx-target": "#wizard-resources",
                "hx-include": "closest form",
                "hx-params": "not csrfmiddlewaretoken",
            }
        )

    def wire_live_checks(self, names: Iterable[str]) -> None:
        """These fields ask the check URL for every field's errors as the member types."""
        live = {
            "hx-post": self.check_url,
            "hx-trigger": LIVE_CHECK_TRIGGER,
            "hx-swap": "none",
            "hx-include": "closest form",
        }
        for name in names:
            self.fields[name].widget.attrs.update(live)

    def _chosen_profile(self, profiles: QuerySet[ClusterProfile]) -> ClusterProfile | None:
        raw = str((self.data if self.is_bound else self.initial).get("cluster", ""))
        chosen = profiles.filter(pk=int(raw)).first() if raw.isdigit() else None
        return chosen or profiles.first()

    def _offer(self, name: str, choices: list[tuple[str, str]], default: str | None) -> None:
        cast(forms.ChoiceField, self.fields[name]).choices = choices
        names = [value for value, _ in choices]
        if self.initial.get(name) not in names:
            self.initial[name] = default if default is not None else (names[0] if names else None)

    @property
    def variable_fields(self) -> list[BoundField]:
        return [self[VARIABLE_PREFIX + spec.name] for spec in self.specs]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.resources = self._resources(cleaned)
        if self.resources is not None and self.profile is not None:
            for problem in batch_script.check_resources(cluster_settings(self.profile), self.resources):
                self._add_problem("resources", problem.code, problem.message)
        return cleaned

    def _resources(self, cleaned: dict[str, Any]) -> batch_script.Resources | None:
        """The resources asked for, or None while one of them is not a valid value."""
        needed = ("partition", "nodes", "ntasks_per_node", "cpus_per_task", "walltime", "gpus")
        if any(cleaned.get(name) in (None, "") for name in needed) or "memory_mb" not in cleaned:
            return None
        return batch_script.Resources(
            partition=cleaned["partition"],
            nodes=cleaned["nodes"],
            ntasks=cleaned["ntasks_per_node"],
            cpus_per_task=cleaned["cpus_per_task"],
            memory_mb=cleaned["memory_mb"],
            walltime_s=cleaned["walltime"],
            gpus=cleaned["gpus"],
            account=cleaned.get("account") or None,
            qos=cleaned.get("qos") or None,
        )

    def _add_problem(self, field: str, code: str, message: str) -> None:
        """A problem the services found: next to the variable or resource it concerns, else above the form."""
        name = VARIABLE_PREFIX + field if any(spec.name == field for spec in self.specs) else FIELD_BY_CODE.get(code)
        self.add_error(name if name in self.fields else None, ValidationError(message, code=code))

    def add_portal_error(self, error: PortalError) -> None:
        """Show a service's refusal, each of its problems next to its field."""
        problems = error.details.get("problems") or [{"code": error.code, "message": error.user_message}]
        for problem in problems:
            message = (
                problem["message"] if problem.get("line") is None else f"line {problem['line']}: {problem['message']}"
            )
            self._add_problem(problem.get("field") or "", problem["code"], message)

    def job_request(self, template_id: int) -> JobRequest:
        """The services' request for a valid form."""
        cleaned = self.cleaned_data
        if self.profile is None or self.resources is None:
            raise ValueError("job_request() is for a valid form only")
        return JobRequest(
            template_id=template_id,
            cluster_id=self.profile.pk,
            recipe=cleaned["recipe"],
            title=cleaned["title"],
            values={spec.name: cleaned[VARIABLE_PREFIX + spec.name] for spec in self.specs},
            resources=self.resources,
            continue_on_timeout=cleaned["continue_on_timeout"],
        )

    def usable_recipe(self) -> LaunchRecipe | None:
        """The launch recipe as chosen, for a preview: None while the cluster, recipe or resources are unusable."""
        recipe = next((r for r in self.recipes if r.name == self.data.get("recipe")), None)
        return None if self.profile is None or self.resources is None else recipe

    def preview_arguments(self, *, default_title: str) -> dict[str, Any] | None:
        """What `preview_job` needs besides the version and the login (values as typed: it checks them itself);
        None while the cluster, recipe or resources are unusable."""
        recipe = self.usable_recipe()
        if self.profile is None or recipe is None or self.resources is None:
            return None
        return {
            "values": {spec.name: self[VARIABLE_PREFIX + spec.name].data for spec in self.specs},
            "profile": self.profile,
            "recipe": recipe,
            "resources": self.resources,
            "title": self.cleaned_data.get("title") or default_title,
        }


class SubmitWhenReadyForm(forms.Form):
    submit_when_ready = forms.BooleanField(required=False, label="Submit automatically when the inputs are ready")
