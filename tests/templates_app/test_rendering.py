"""Rendering in the sandbox: typed values, declared variables, hostile templates and values refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates_app.namd_reader import read_config
from templates_app.rendering import (
    TemplateProblems,
    VariableSpec,
    VariableType,
    check_template,
    coerce_value,
    render_config,
)

BODY = """\
structure          {{ structure }}
coordinates        {{ coordinates }}
parameters         {{ parameters }}
paraTypeCharmm     on
temperature        {{ temperature }}
exclude            scaled1-4
cutoff             {{ cutoff }}
switching          {{ switching|onoff }}
outputName         {{ output_name }}
minimize           {{ minimize_steps }}
"""
SPECS = [
    VariableSpec("structure", VariableType.FILE, default="system.psf", extensions=(".psf",), namd_keyword="structure"),
    VariableSpec("coordinates", VariableType.FILE, default="system.pdb", extensions=(".pdb",)),
    VariableSpec("parameters", VariableType.FILE, default="par_all36.prm", extensions=(".prm", ".inp")),
    VariableSpec("temperature", VariableType.FLOAT, default=300.0, minimum=0, maximum=1000, unit="K"),
    VariableSpec("cutoff", VariableType.FLOAT, default=12.0, minimum=6, maximum=20, unit="Å"),
    VariableSpec("switching", VariableType.BOOLEAN, default=True),
    VariableSpec("output_name", VariableType.TEXT, default="min", pattern=r"[A-Za-z0-9_-]{1,40}"),
    VariableSpec("minimize_steps", VariableType.INTEGER, default=1000, minimum=1, maximum=10_000_000),
]


def problem_codes(body: str, values: dict, specs: list[VariableSpec] = SPECS) -> list[str]:
    with pytest.raises(TemplateProblems) as raised:
        render_config(body, specs, values)
    return [problem.code for problem in raised.value.problems]


def test_a_template_renders_with_defaults_into_a_checked_config() -> None:
    assert check_template(BODY, SPECS) == []
    rendered = render_config(BODY, SPECS, {"temperature": "310", "switching": "off"})
    assert "temperature        310.0\n" in rendered.config
    assert "switching          off\n" in rendered.config
    assert rendered.values["minimize_steps"] == 1000


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"output_name": "min\nrun 1000000"}, "VALUE_UNSAFE"),
        ({"output_name": "min; run 5"}, "VALUE_UNSAFE"),
        ({"output_name": "min # x"}, "VALUE_UNSAFE"),
        ({"output_name": "$(reboot)"}, "VALUE_UNSAFE"),
        ({"output_name": "[exec id]"}, "VALUE_UNSAFE"),
        ({"output_name": "{x}"}, "VALUE_UNSAFE"),
        ({"output_name": "a b"}, "VALUE_PATTERN_MISMATCH"),
        ({"output_name": "x" * 10_000}, "VALUE_TOO_LONG"),
        ({"temperature": "hot"}, "VALUE_WRONG_TYPE"),
        ({"temperature": "nan"}, "VALUE_WRONG_TYPE"),
        ({"temperature": 1e308 * 10}, "VALUE_WRONG_TYPE"),
        ({"temperature": 5000}, "VALUE_OUT_OF_RANGE"),
        ({"minimize_steps": 1.5}, "VALUE_WRONG_TYPE"),
        ({"minimize_steps": True}, "VALUE_WRONG_TYPE"),
        ({"minimize_steps": 10**30}, "VALUE_OUT_OF_RANGE"),
        ({"switching": "perhaps"}, "VALUE_WRONG_TYPE"),
        ({"structure": "../../etc/passwd.psf"}, "FILE_NAME_INVALID"),
        ({"structure": "system.pdb"}, "FILE_EXTENSION_NOT_ALLOWED"),
        ({"structure": ["a.psf"]}, "VALUE_WRONG_TYPE"),
        ({"surprise": 1}, "VALUE_UNKNOWN_VARIABLE"),
    ],
)
def test_hostile_or_wrong_values_are_refused_with_a_code(values: dict, code: str) -> None:
    assert code in problem_codes(BODY, values)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{{ ''.__class__.__mro__ }}", "TEMPLATE_UNSAFE"),
        ("{{ output_name.__class__.__init__.__globals__ }}", "TEMPLATE_UNSAFE"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "TEMPLATE_UNSAFE"),
        ("{% include '/etc/passwd' %}", "TEMPLATE_UNSAFE"),
        ("{% import 'x' as y %}", "TEMPLATE_UNSAFE"),
        ("{{ undefined_thing }}", "TEMPLATE_UNDEFINED"),
    ],
)
def test_sandbox_escapes_are_refused(body: str, code: str) -> None:
    assert code in problem_codes(body + "\n" + BODY, {})


def test_check_template_points_at_problems() -> None:
    assert [p.code for p in check_template(BODY + "{{ extra }}\n", SPECS)] == ["VARIABLE_UNDECLARED"]
    assert [p.code for p in check_template(BODY.replace("{{ cutoff }}", "12"), SPECS)] == ["VARIABLE_UNUSED"]
    syntax = check_template(BODY + "{% if %}\n", SPECS)
    assert (syntax[0].code, syntax[0].line) == ("TEMPLATE_SYNTAX", 11)
    assert "TEMPLATE_UNSAFE" in [p.code for p in check_template(BODY + "{% include 'x' %}\n", SPECS)]
    no_run = check_template(
        BODY.replace("minimize           {{ minimize_steps }}\n", "") + "{# {{ minimize_steps }} #}", SPECS
    )
    assert "NAMD_NOTHING_TO_RUN" in [p.code for p in no_run] or "VARIABLE_UNUSED" in [p.code for p in no_run]


def test_an_optional_file_may_be_empty() -> None:
    spec = VariableSpec("restraints", VariableType.FILE, required=False, extensions=(".txt",))
    assert coerce_value(spec, "") is None
    assert coerce_value(spec, "bonds.txt") == "bonds.txt"


def test_an_optional_integer_may_be_empty_and_its_guarded_line_is_left_out() -> None:
    spec = VariableSpec("seed", VariableType.INTEGER, required=False, minimum=1)
    assert (coerce_value(spec, ""), coerce_value(spec, None), coerce_value(spec, "7")) == (None, None, 7)
    with pytest.raises(TemplateProblems) as refused:
        coerce_value(spec, 0)
    assert refused.value.code == "VALUE_OUT_OF_RANGE"
    body = BODY.replace("exclude", "{% if seed %}seed               {{ seed }}\n{% endif %}exclude")
    unseeded = render_config(BODY, SPECS, {}).config
    assert render_config(body, [*SPECS, spec], {}).config == unseeded
    seeded = render_config(body, [*SPECS, spec], {"seed": 42}).config
    assert seeded == unseeded.replace("exclude", "seed               42\nexclude")
    assert check_template(body, [*SPECS, spec]) == []
    required = VariableSpec("seed", VariableType.INTEGER, minimum=1)
    with pytest.raises(TemplateProblems) as missing:
        coerce_value(required, "")
    assert missing.value.code == "VALUE_REQUIRED"


@given(st.text(max_size=80))
def test_no_text_value_can_add_a_line_or_keyword(text: str) -> None:
    spec = VariableSpec("output_name", VariableType.TEXT, default="x")
    try:
        rendered = render_config("outputName {{ output_name }}\n", [spec], {"output_name": text})
    except TemplateProblems:
        return
    assert rendered.config.count("\n") == 1
    assert not any(mark in rendered.config for mark in ";#$[]{}")


@given(st.text(min_size=1, max_size=60))
def test_a_members_text_accepted_by_its_checks_is_one_value_to_the_tcl_reader(text: str) -> None:
    """Whatever text passes the value checks becomes the words of one keyword: never a command, a variable
    or another keyword when NAMD's Tcl reads the config (the reader is the judge here, not a regex)."""
    spec = VariableSpec(name="label", type=VariableType.TEXT)
    try:
        value = coerce_value(spec, text)
    except TemplateProblems:
        return
    reading = read_config(f"structure a.psf\noutputName {value}\nrun 10\n")
    words = " ".join(word for word in value.split(" ") if word)  # Tcl splits words at spaces (the rest is refused)
    assert [(s.name, s.value) for s in reading.settings] == [("structure", "a.psf"), ("outputName", words)]
    assert [c.name for c in reading.commands] == ["run"]
    assert reading.actions == []
    assert reading.failures == []
    assert not reading.depends_on_cluster
