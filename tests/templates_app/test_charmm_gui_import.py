"""Importing CHARMM-GUI NAMD downloads as template families (templates_app/charmm_gui.py, its admin page and command).

Downloads are built in tmp_path from the REAL CHARMM-GUI configs of tests/fixtures/namd_configs (see its
MANIFEST.json): the stage files and the files beside them are copied as they are, the toppar files they
read get small stand-ins of the same names, and a `step3_input.psf` placeholder stands for the system.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from portal.errors import InvalidInput, TemplateError
from templates_app.charmm_gui import (
    MEMBRANE_BUILDER,
    OTHER_BUILDER,
    SOLUTION_BUILDER,
    builder_family,
    convert_stage,
    escape_jinja,
    family_protocol,
    find_stages,
    import_charmm_gui,
    stage_category,
    stage_number,
    top_level_lines,
    toppar_folder,
)
from templates_app.models import Protocol, ProtocolStage, Template, TemplateAsset, TemplateVersion
from templates_app.namd_config import check_config
from templates_app.protocol_services import pinned_stages, protocol_draft_problems
from templates_app.protocols import plan_steps, protocol_problems
from templates_app.rendering import ENVIRONMENT, render_config
from templates_app.services import config_path, render_version
from templates_app.specs import specs_from_json
from tests.factories import UserFactory

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_configs"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
CHARMM_GUI_CONFIGS = [e for e in MANIFEST if e["file"].startswith("charmm-gui-") and e["kind"] == "config"]
TOP = "charmm-gui-1234567890"
PARAMETERS_RE = re.compile(r"^\s*parameters\s+(\S+)", re.IGNORECASE | re.MULTILINE)
IMPORT_URL = "/admin/templates_app/template/import-charmm-gui/"


# ------------------------------------------------------------------ building downloads from the corpus


@dataclass(frozen=True)
class System:
    corpus: str  # the download's folder in the corpus
    family: str
    workdir: str
    stages: tuple[str, ...]  # file names, in step order
    variables: dict[str, dict[str, tuple[str, object]]]  # stage file -> name -> (type, default)


SYSTEMS = {
    "tlr4": System(
        "charmm-gui-tlr4",
        SOLUTION_BUILDER,
        "namd",
        ("step4_equilibration.inp", "step5_production.inp"),
        {
            "step4_equilibration.inp": {"temp": ("float", 310.15), "outputname": ("text", "step4_equilibration")},
            "step5_production.inp": {
                "temp": ("float", 310.15),
                "outputname": ("text", "step5_production"),
                "inputname": ("text", "step4_equilibration"),
            },
        },
    ),
    "2erm": System(
        "charmm-gui-2erm/charmm-gui",
        SOLUTION_BUILDER,
        "namd",
        ("step4_equilibration.inp", "step5_production.inp"),
        {
            "step4_equilibration.inp": {"temp": ("float", 303.15), "outputname": ("text", "step4_equilibration")},
            "step5_production.inp": {
                "temp": ("float", 303.15),
                "outputname": ("text", "step5_production"),
                "inputname": ("text", "step4_equilibration"),
            },
        },
    ),
    "fucp": System(
        "charmm-gui-fucp",
        MEMBRANE_BUILDER,
        "namd",
        ("step6.1_equilibration.inp", "step6.2_equilibration.inp", "step7.1_production.inp"),
        {
            "step6.1_equilibration.inp": {"temp": ("float", 303.15), "outputname": ("text", "step6.1_equilibration")},
            "step6.2_equilibration.inp": {
                "temp": ("float", 303.15),
                "outputname": ("text", "step6.2_equilibration"),
                "inputname": ("text", "step6.1_equilibration"),
            },
            "step7.1_production.inp": {
                "temp": ("float", 303.15),
                "outputname": ("text", "step7.1_production"),
                "inputname": ("text", "step6.6_equilibration"),
            },
        },
    ),
    "brainmemb": System(
        "charmm-gui-brainmemb",
        MEMBRANE_BUILDER,
        "",
        ("step6.1_equilibration.inp", "step8_production.inp"),
        {
            "step6.1_equilibration.inp": {"temp": ("integer", 300), "outputname": ("text", "step6.1_equilibration")},
            "step8_production.inp": {
                "temp": ("integer", 300),
                "outputname": ("text", "step8_production"),
                "inputname": ("text", "step7_production"),
            },
        },
    ),
}


def build_download(tmp_path: Path, system: System) -> tuple[Path, dict[str, bytes]]:
    """A CHARMM-GUI-shaped folder `<tmp>/charmm-gui-1234567890/` and its toppar files (relpath -> content)."""
    top = tmp_path / "download" / TOP
    shutil.copytree(CORPUS / system.corpus, top)
    (top / "step3_input.psf").write_text("PSF placeholder: system-specific, never an asset\n")
    toppar: dict[str, bytes] = {}
    for stage in system.stages:
        text = (top / system.workdir / stage).read_text()
        for written in PARAMETERS_RE.findall(text):
            relpath = (Path(system.workdir) / written).as_posix()
            toppar[relpath] = f"* {written}: a toppar stand-in\n*\n\nEND\n".encode()
    for relpath, content in toppar.items():
        (top / relpath).parent.mkdir(parents=True, exist_ok=True)
        (top / relpath).write_bytes(content)
    return top, toppar


def as_tgz(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return target


def as_zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return target


def packed(tmp_path: Path, folder: Path, form: str) -> Path:
    if form in ("folder", "parent-folder"):
        return folder if form == "folder" else folder.parent
    return as_tgz(folder, tmp_path / f"{TOP}.tgz") if form == "tgz" else as_zip(folder, tmp_path / f"{TOP}.zip")


def stage_text(system: System, stage: str) -> str:
    return (CORPUS / system.corpus / system.workdir / stage).read_text()


def latest(template: Template) -> TemplateVersion:
    return template.versions.order_by("-number").first()


# ------------------------------------------------------------------ pure: stages, families, conversion


def test_stages_are_found_in_namd_in_step_order_and_the_charmm_inputs_at_the_top_are_not() -> None:
    paths = [
        "step1_pdbreader.inp",
        "step4_equilibration.inp",
        "namd/README",
        "namd/step7.1_production.inp",
        "namd/step6.10_equilibration.inp",
        "namd/step6.2_equilibration.inp",
        "namd/step6.1_equilibration.inp",
        "namd/step7_production.inp",
        "namd/step6.2_equilibration.inp.bak",
        "namd/toppar/step9_x.inp",
    ]
    download = find_stages(paths)
    assert download.root == ""
    assert download.workdir == "namd"
    assert [stage.relpath for stage in download.stages] == [
        "namd/step6.1_equilibration.inp",
        "namd/step6.2_equilibration.inp",
        "namd/step6.10_equilibration.inp",
        "namd/step7_production.inp",
        "namd/step7.1_production.inp",
    ]


def test_stages_at_the_top_run_there_and_wrapping_folders_are_looked_through() -> None:
    flat = find_stages(["charmm-gui-1/step5_production.inp", "charmm-gui-1/step4_equilibration.inp"])
    assert (flat.root, flat.workdir) == ("charmm-gui-1/", "")
    assert [stage.relpath for stage in flat.stages] == [
        "charmm-gui-1/step4_equilibration.inp",
        "charmm-gui-1/step5_production.inp",
    ]
    nested = find_stages(["mine/charmm-gui/namd/step4_equilibration.inp", "mine/charmm-gui/toppar/a.prm"])
    assert (nested.root, nested.workdir) == ("mine/charmm-gui/", "namd")


@pytest.mark.parametrize("paths", [[], ["namd/README", "toppar/par.prm"], ["a/namd/step4.txt", "b/step4_x.inp/c"]])
def test_a_download_without_stages_is_refused_with_a_code(paths: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        find_stages(paths)
    assert refused.value.code == "CHARMM_GUI_NO_STAGES"
    assert "namd/step4_equilibration.inp" in refused.value.user_message


@pytest.mark.parametrize(
    ("name", "number", "category"),
    [
        ("step4_equilibration.inp", (4,), "equilibration"),
        ("step6.3_equilibration.inp", (6, 3), "equilibration"),
        ("step7_production.inp", (7,), "production"),
        ("step5_minimization.inp", (5,), "minimization"),
        ("step5.inp", (5,), "other"),
        ("step3_pbcsetup.str", None, "other"),
        ("mystep4_equilibration.inp", None, "equilibration"),
    ],
)
def test_stage_number_and_category_come_from_the_name(name: str, number, category: str) -> None:
    assert stage_number(name) == number
    assert stage_category(name) == category


def test_the_family_is_the_builder_the_stage_names_point_to() -> None:
    assert builder_family(find_stages(["namd/step4_equilibration.inp", "namd/step5_production.inp"]).stages) == (
        SOLUTION_BUILDER
    )
    membrane = ["namd/step6.1_equilibration.inp", "namd/step7_production.inp"]
    assert builder_family(find_stages(membrane).stages) == MEMBRANE_BUILDER
    assert builder_family(find_stages(["namd/step9_run.inp"]).stages) == OTHER_BUILDER


def test_toppar_folder_of_a_parameter_file() -> None:
    assert toppar_folder("namd/toppar/par_all36m_prot.prm") == "namd/toppar"
    assert toppar_folder("toppar/stream/lipid/x.str") == "toppar"
    assert toppar_folder("lig/lig.prm") is None
    assert toppar_folder("toppar") is None


def rendered_with_defaults(body: str, variables: list[dict]) -> str:
    return ENVIRONMENT.from_string(body).render({v["name"]: v["default"] for v in variables})


def test_top_level_set_lines_become_typed_variables_and_the_rest_stays() -> None:
    text = (
        "set temp                310.15;\n"
        "set NSteps 1000 ;  # steps {{ not jinja }}\n"
        "set outputname          step4_equilibration;\n"
        "set small 1e-5\n"
        "set dot 10.\n"
        "set zero -0\n"
        "set list {1 2 3}\n"
        "set fromvar $temp\n"
        "set a 1; set b 2\n"
        "set twice 1\n"
        "set twice 2\n"
        "set none 3\n"
        "set Clash 1\n"
        "set clash 2\n"
        "set comment 4 # not after a semicolon: a Tcl argument\n"
        "if { $temp > 300 } {\n"
        "   set inside 5\n"
        "}\n"
        'puts "a quoted word over lines\n'
        "set quoted 6\n"
        '"\n'
        "exec echo \\\n"
        "set continued 7\n"
        "run 100\n"
    )
    body, variables = convert_stage(text, filename="namd/step4_equilibration.inp")
    found = {v["name"]: (v["type"], v["default"]) for v in variables}
    assert found == {
        "temp": ("float", 310.15),
        "nsteps": ("integer", 1000),
        "outputname": ("text", "step4_equilibration"),
        "small": ("text", "1e-5"),
        "dot": ("text", "10."),
        "zero": ("text", "-0"),
        "clash": ("integer", 1),
    }
    assert body.splitlines()[:3] == [
        "set temp                {{ temp }};",
        "set NSteps {{ nsteps }}{% raw %} ;  # steps {{ not jinja }}{% endraw %}",
        "set outputname          {{ outputname }};",
    ]
    text_variable = next(v for v in variables if v["name"] == "outputname")
    assert text_variable["pattern"] == "[A-Za-z0-9_.+-]{1,100}"
    where = "From namd/step4_equilibration.inp line 3: "
    assert text_variable["help"] == where + "set outputname          step4_equilibration;"
    kept = (
        "set list {1 2 3}",
        "set twice 1",
        "set none 3",
        "set clash 2",
        "   set inside 5",
        "set quoted 6",
        "set continued 7",
        "set a 1; set b 2",
        "set fromvar $temp",
        "set comment 4 # not",
    )
    assert [line for line in kept if not any(row.startswith(line) for row in body.splitlines())] == []
    assert rendered_with_defaults(body, variables) == text


def test_jinja_syntax_in_tcl_is_kept_verbatim_line_by_line() -> None:
    text = (
        "puts {{nested}}\n"
        "# {% if x %} and {# not a comment #}\n"
        "puts x{\n"
        "set raw 1\n"
        "puts {%- endraw %} and {{ again }} x{\n"
        "plain {line}\n"
        "last{{"
    )
    body = escape_jinja(text)
    assert body.splitlines()[0] == "{% raw %}puts {{nested}}{% endraw %}"
    assert body.splitlines()[2] == "puts x{"
    assert body.splitlines()[5] == "plain {line}"
    assert ENVIRONMENT.from_string(body).render() == text
    converted, variables = convert_stage(text, filename="x.inp")
    assert [v["name"] for v in variables] == ["raw"]
    assert rendered_with_defaults(converted, variables) == text


OUTPUT_LINE = "outputName              step5_production; # base name for output from this run\n"


@pytest.mark.parametrize(
    ("text", "variables", "owned"),
    [
        # CHARMM-GUI's production stages: the keyword line with a literal, `;` and a comment
        ("set temp 310.15;\n" + OUTPUT_LINE + "run 10\n", {"temp": 310.15, "outputname": "step5_production"}, 1),
        ("OUTPUTNAME out\nrun 10\n", {"outputname": "out"}, 0),
        ("outputname   5 ;\nrun 10\n", {"outputname": "5"}, 0),  # text, whatever it looks like
        # a `set outputname` of the same literal owns the keyword line too
        ("set outputname a;\noutputName a;\nrun 10\n", {"outputname": "a"}, 1),
        ("set outputname a;\noutputName b;\nrun 10\n", {"outputname": "a"}, None),
        ("set outputname 5;\noutputName 5;\nrun 10\n", {"outputname": 5}, None),
        # no variable may own it: a Tcl `set` of that name stays, a value that is no literal, two lines, in braces
        ("if {1} {\n  set outputname x\n}\noutputName a\nrun 10\n", {}, None),
        ("outputName $outputname\nrun 10\n", {}, None),
        ("outputName a\noutputName b\nrun 10\n", {}, None),
        ("if {1} {\n  outputName a\n}\nrun 10\n", {}, None),
        ("outputName a b\nrun 10\n", {}, None),
    ],
)
def test_a_literal_output_name_line_becomes_the_outputname_variable(text: str, variables: dict, owned) -> None:
    body, found = convert_stage(text, filename="namd/step5_production.inp")
    assert {v["name"]: v["default"] for v in found} == variables
    if "outputname" in variables and isinstance(variables["outputname"], str):
        assert next(v for v in found if v["name"] == "outputname")["type"] == "text"
    lines = body.splitlines()
    if owned is None:
        assert not any(line.lower().startswith("outputname") and "{{" in line for line in lines)
    else:
        assert "{{ outputname }}" in lines[owned]
    assert rendered_with_defaults(body, found) == text


def test_a_renamed_output_renders_into_the_keyword_line() -> None:
    body, _ = convert_stage("set temp 310.15;\n" + OUTPUT_LINE + "run 10\n", filename="namd/step5_production.inp")
    rendered = ENVIRONMENT.from_string(body).render({"temp": 310.15, "outputname": "step5_production_2"})
    assert rendered.splitlines()[1] == OUTPUT_LINE.replace("step5_production", "step5_production_2").rstrip("\n")


def test_top_level_lines_follow_braces_quotes_brackets_and_comments() -> None:
    text = '# a { in a comment\nset a 1\nset b [list \\\n  x]\nset c {\n}\nputs "}"\nset d 2\n'
    assert top_level_lines(text) == [True, True, True, False, True, False, True, True]


@pytest.mark.parametrize("entry", CHARMM_GUI_CONFIGS, ids=lambda entry: entry["file"])
def test_every_real_charmm_gui_config_renders_back_to_itself(entry: dict) -> None:
    raw = (CORPUS / entry["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
    body, variables = convert_stage(raw.decode(), filename=entry["file"])
    assert "{{ temp }}" in body
    placed = "namd/job.namd" if "/namd/" in entry["file"] else "job.namd"
    rendered = render_config(body, specs_from_json(variables), {}, config_path=placed)
    assert rendered.config == raw.decode()


def test_the_corpus_has_the_four_charmm_gui_systems() -> None:
    assert {entry["file"].split("/")[0] for entry in CHARMM_GUI_CONFIGS} == {
        "charmm-gui-tlr4",
        "charmm-gui-2erm",
        "charmm-gui-fucp",
        "charmm-gui-brainmemb",
    }
    assert len(CHARMM_GUI_CONFIGS) == sum(len(system.stages) for system in SYSTEMS.values())


# ------------------------------------------------------------------ the import service


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "form"), [("tlr4", "folder"), ("2erm", "tgz"), ("fucp", "tgz"), ("brainmemb", "zip")])
def test_a_download_becomes_one_template_per_stage_in_order(tmp_path: Path, lab_admin, key: str, form: str) -> None:
    system = SYSTEMS[key]
    folder, toppar = build_download(tmp_path, system)
    templates = import_charmm_gui(source=packed(tmp_path, folder, form), user=lab_admin)
    titles = [stage.removesuffix(".inp").replace("_", " ") for stage in system.stages]
    assert [t.name for t in templates] == [f"{system.family}: {title}" for title in titles]
    assert list(Template.objects.order_by("stage").values_list("family", "stage")) == [
        (system.family, number) for number in range(1, len(system.stages) + 1)
    ]
    shared_assets = None
    for template, stage in zip(templates, system.stages, strict=True):
        version = template.versions.get()
        assert (version.number, version.workdir, version.created_by) == (1, system.workdir, lab_admin)
        assert template.category == ("production" if "production" in stage else "equilibration")
        assert {v["name"]: (v["type"], v["default"]) for v in version.variables} == system.variables[stage]
        assert render_version(version=version, values={}).config == stage_text(system, stage)
        assets = {a.relpath: (a.sha256, a.size_bytes, Path(a.stored_path).read_bytes()) for a in version.assets.all()}
        assert assets == {
            relpath: (hashlib.sha256(content).hexdigest(), len(content), content) for relpath, content in toppar.items()
        }
        shared_assets = shared_assets or assets
        assert assets == shared_assets
    assert len(toppar) >= 24
    assert all(relpath.startswith(f"{system.workdir}/toppar/".lstrip("/")) for relpath in toppar)
    assert not TemplateAsset.objects.exclude(relpath__contains="toppar/").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["folder", "parent-folder", "tgz", "zip"])
def test_every_form_of_a_download_gives_the_same_templates(tmp_path: Path, form: str) -> None:
    folder, toppar = build_download(tmp_path, SYSTEMS["tlr4"])
    templates = import_charmm_gui(source=packed(tmp_path, folder, form), user=None)
    assert [(t.slug, t.stage) for t in templates] == [
        ("charmm-gui-solution-builder-step4-equilibration", 1),
        ("charmm-gui-solution-builder-step5-production", 2),
    ]
    assert sorted(latest(templates[1]).assets.values_list("relpath", flat=True)) == sorted(toppar)


@pytest.mark.django_db
def test_reimporting_makes_no_duplicate_and_a_changed_stage_a_new_version(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["fucp"])
    first = import_charmm_gui(source=folder, user=None)
    again = import_charmm_gui(source=as_tgz(folder, tmp_path / "again.tgz"), user=None)
    assert [t.pk for t in again] == [t.pk for t in first]
    assert Template.objects.count() == 3
    assert TemplateVersion.objects.count() == 3
    stage = folder / "namd" / "step6.2_equilibration.inp"
    stage.write_text(stage.read_text().replace("set temp           303.15;", "set temp           310.15;"))
    changed = import_charmm_gui(source=folder, user=None)
    assert [latest(t).number for t in changed] == [1, 2, 1]
    assert latest(changed[1]).variables[0] == {
        "name": "temp",
        "type": "float",
        "default": 310.15,
        "help": "From namd/step6.2_equilibration.inp line 4: set temp           310.15;",
    }
    assert Template.objects.count() == 3


@pytest.mark.django_db
def test_a_family_name_overrides_the_builder_and_a_taken_slug_gets_a_suffix(tmp_path: Path) -> None:
    Template.objects.create(name="Someone's own", slug="lab-membranes-step6-1-equilibration")
    folder, _ = build_download(tmp_path, SYSTEMS["brainmemb"])
    templates = import_charmm_gui(source=folder, user=None, family="  Lab   membranes ")
    assert [(t.name, t.slug, t.family) for t in templates] == [
        ("Lab membranes: step6.1 equilibration", "lab-membranes-step6-1-equilibration-2", "Lab membranes"),
        ("Lab membranes: step8 production", "lab-membranes-step8-production", "Lab membranes"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("family", "stage", "code"),
    [
        ("x" * 81, "step4_equilibration.inp", "CHARMM_GUI_FAMILY_INVALID"),
        ("nul\x00byte", "step4_equilibration.inp", "CHARMM_GUI_FAMILY_INVALID"),
        ("x" * 80, f"step4_{'e' * 60}.inp", "CHARMM_GUI_NAME_TOO_LONG"),
    ],
)
def test_a_family_name_must_fit(tmp_path: Path, family: str, stage: str, code: str) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    (folder / "namd" / "step5_production.inp").unlink()
    (folder / "namd" / "step4_equilibration.inp").rename(folder / "namd" / stage)
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None, family=family)
    assert refused.value.code == code
    assert Template.objects.exists() is False


@pytest.mark.django_db
def test_a_download_without_stages_is_refused_and_nothing_saved(tmp_path: Path) -> None:
    folder = tmp_path / TOP
    (folder / "toppar").mkdir(parents=True)
    (folder / "toppar" / "par_all36m_prot.prm").write_text("* params\n")
    (folder / "step3_input.psf").write_text("PSF\n")
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=as_zip(folder, tmp_path / "x.zip"), user=None)
    assert refused.value.code == "CHARMM_GUI_NO_STAGES"
    assert Template.objects.exists() is False


def hostile_tgz(tmp_path: Path, folder: Path, *, link: bool) -> Path:
    target = tmp_path / "hostile.tgz"
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
        member = tarfile.TarInfo(f"{folder.name}/namd/toppar/evil.prm" if link else "../evil.inp")
        if link:
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(member)
        else:
            member.size = 4
            archive.addfile(member, io.BytesIO(b"run\n"))
    return target


@pytest.mark.django_db
@pytest.mark.parametrize(("link", "code"), [(True, "ARCHIVE_LINK"), (False, "ARCHIVE_PATH_ESCAPE")])
def test_a_hostile_archive_is_refused_with_the_archive_code(tmp_path: Path, link: bool, code: str) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=hostile_tgz(tmp_path, folder, link=link), user=None)
    assert refused.value.code == code
    assert Template.objects.exists() is False
    assert TemplateAsset.objects.exists() is False


@pytest.mark.django_db
def test_a_link_in_a_download_folder_is_refused(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    (folder / "namd" / "toppar" / "evil.prm").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_LINK"
    assert "namd/toppar/evil.prm" in refused.value.user_message


@pytest.mark.django_db
def test_a_stage_with_an_error_is_named_with_its_line_and_nothing_is_imported(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    stage = folder / "namd" / "step5_production.inp"
    lines = stage.read_text().splitlines(keepends=True)
    lines.insert(11, "langevinDampin 1.0\n")
    stage.write_text("".join(lines))
    with pytest.raises(TemplateError) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_STAGE_INVALID"
    assert refused.value.user_message.startswith("namd/step5_production.inp line 12: [NAMD_UNKNOWN_KEYWORD] ")
    assert refused.value.details["problems"][0]["code"] == "NAMD_UNKNOWN_KEYWORD"
    assert Template.objects.exists() is False


@pytest.mark.django_db
def test_a_refusal_after_the_first_stage_saved_rolls_the_whole_import_back(tmp_path: Path) -> None:
    Template.objects.create(name=f"{SOLUTION_BUILDER}: step5 production", slug="mine", family="")
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_NAME_TAKEN"
    assert list(Template.objects.values_list("slug", flat=True)) == ["mine"]
    assert TemplateVersion.objects.exists() is False


@pytest.mark.django_db
def test_a_toppar_file_the_stages_read_must_be_in_the_download(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    (folder / "namd" / "toppar" / "par_all36_na.prm").unlink()
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_TOPPAR_MISSING"
    assert "namd/step4_equilibration.inp line 36 reads namd/toppar/par_all36_na.prm" in refused.value.user_message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "code"), [("notes.txt", "CHARMM_GUI_NOT_AN_ARCHIVE"), ("gone.tgz", "CHARMM_GUI_SOURCE_MISSING")]
)
def test_a_source_that_is_no_download_is_refused(tmp_path: Path, name: str, code: str) -> None:
    if name == "notes.txt":
        (tmp_path / name).write_text("hello\n")
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=tmp_path / name, user=None)
    assert refused.value.code == code


# ------------------------------------------------------------------ the family's protocol


def step_outputs(pinned, steps) -> list[tuple[str, list[str]]]:
    """Each step's config as NAMD reads it: the output name it writes and the coordinates it reads."""
    found = []
    for step in steps:
        item = pinned[step.stage_position - 1]
        config = render_version(version=item.version, values={**item.rule.values, **step.values}).config
        check = check_config(config, config_path=config_path(item.version.workdir), config_only=True)
        output = next(s.value for s in check.reading.settings if s.name.lower() == "outputname")
        reads = [r.path for r in check.files_read if r.keyword.lower() == "bincoordinates"]
        found.append((output, reads))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_each_real_download_makes_a_protocol_whose_steps_read_the_step_before(tmp_path: Path, key: str) -> None:
    system = SYSTEMS[key]
    folder, _ = build_download(tmp_path, system)
    templates = import_charmm_gui(source=folder, user=None, production_repeats=3)
    protocol = family_protocol(system.family)
    assert (protocol.name, protocol.family, protocol.shared_values) == (system.family, system.family, {})
    titles = [stage.removesuffix(".inp").replace("_", " ") for stage in system.stages]
    assert list(protocol.stages.values_list("position", "name", "template", "continuation", "input_variable")) == [
        (position, title, template.pk, "charmm_gui" if position > 1 else "first", "inputname")
        for position, (title, template) in enumerate(zip(titles, templates, strict=True), start=1)
    ]
    assert list(protocol.stages.values_list("repeat", flat=True)) == [1] * (len(system.stages) - 1) + [3]
    pinned = pinned_stages(protocol)
    assert protocol_problems([item.rule for item in pinned]) == []
    assert protocol_draft_problems(shared_values={}, stages=list(protocol.stages.all())) == []
    steps = plan_steps([item.rule for item in pinned])
    assert len(steps) == len(system.stages) + 2
    for before, step in itertools.pairwise(steps):
        assert step.values["inputname"] == before.output_name
    workdir = f"{system.workdir}/" if system.workdir else ""
    outputs = step_outputs(pinned, steps)
    assert [output for output, _ in outputs] == [step.output_name for step in steps]
    assert [reads for _, reads in outputs[1:]] == [[f"{workdir}{step.output_name}.coor"] for step in steps[:-1]]


def membrane_equilibration(stage_62: str, number: int) -> str:
    """step6.N as CHARMM-GUI writes it: step6.2's config naming its own outputs and reading step6.(N-1)'s."""
    return stage_62.replace(
        "set outputname step6.2_equilibration;", f"set outputname step6.{number}_equilibration;"
    ).replace("set inputname  step6.1_equilibration;", f"set inputname  step6.{number - 1}_equilibration;")


@pytest.mark.django_db
def test_membrane_builder_equilibrates_in_six_stages_then_produces_ten_segments(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["fucp"])
    stage_62 = (folder / "namd" / "step6.2_equilibration.inp").read_text()
    for number in range(3, 7):
        (folder / "namd" / f"step6.{number}_equilibration.inp").write_text(membrane_equilibration(stage_62, number))
    import_charmm_gui(source=folder, user=None, production_repeats=10)
    protocol = family_protocol(MEMBRANE_BUILDER)
    assert [(s.name, s.continuation, s.repeat) for s in protocol.stages.all()] == [
        ("step6.1 equilibration", "first", 1),
        *[(f"step6.{n} equilibration", "charmm_gui", 1) for n in range(2, 7)],
        ("step7.1 production", "charmm_gui", 10),
    ]
    steps = plan_steps([item.rule for item in pinned_stages(protocol)])
    assert [step.output_name for step in steps] == [
        *[f"step6.{n}_equilibration" for n in range(1, 7)],
        *[f"step7.1_production_{k}" for k in range(1, 11)],
    ]
    assert [step.values.get("inputname") for step in steps[:8]] == [
        None,
        *[f"step6.{n}_equilibration" for n in range(1, 7)],
        "step7.1_production_1",
    ]


@pytest.mark.django_db
def test_reimporting_keeps_the_stages_tuning_and_the_repeats_unless_given(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    import_charmm_gui(source=folder, user=None)
    protocol = family_protocol(SOLUTION_BUILDER)
    assert list(protocol.stages.values_list("repeat", flat=True)) == [1, 1]
    ProtocolStage.objects.filter(protocol=protocol, position=2).update(
        repeat=4, values={"temp": 300.0}, resources={"walltime_s": 7200}, recipe_name="gpu"
    )
    Protocol.objects.filter(pk=protocol.pk).update(description="Ours", is_retired=True)
    import_charmm_gui(source=folder, user=None)
    again = family_protocol(SOLUTION_BUILDER)
    assert (again.pk, again.description, again.is_retired) == (protocol.pk, "Ours", True)
    production = again.stages.get(position=2)
    assert (production.repeat, production.values, production.resources, production.recipe_name) == (
        4,
        {"temp": 300.0},
        {"walltime_s": 7200},
        "gpu",
    )
    import_charmm_gui(source=folder, user=None, production_repeats=10)
    assert family_protocol(SOLUTION_BUILDER).stages.get(position=2).repeat == 10
    assert Protocol.objects.count() == 1


@pytest.mark.django_db
def test_a_protocol_of_the_familys_name_from_elsewhere_is_not_taken_over(tmp_path: Path) -> None:
    Protocol.objects.create(name=SOLUTION_BUILDER, slug="ours")
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_NAME_TAKEN"
    assert Template.objects.exists() is False


@pytest.mark.django_db
def test_stages_that_make_no_protocol_are_refused_and_nothing_is_imported(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    stage = folder / "namd" / "step5_production.inp"
    stage.write_text(
        stage.read_text().replace(
            "set inputname           step4_equilibration;", "if {1} { set inputname step4_equilibration }"
        )
    )
    with pytest.raises(InvalidInput) as refused:
        import_charmm_gui(source=folder, user=None)
    assert refused.value.code == "CHARMM_GUI_PROTOCOL_INVALID"
    assert "its template has no variable 'inputname'" in refused.value.user_message
    assert refused.value.details["problems"][0]["field"] == "stages"
    assert (Template.objects.exists(), Protocol.objects.exists()) == (False, False)


# ------------------------------------------------------------------ the admin page and the command


@pytest.mark.django_db
def test_the_admin_imports_an_uploaded_archive(client, lab_admin, tmp_path: Path) -> None:
    client.force_login(lab_admin)
    changelist = client.get("/admin/templates_app/template/").content.decode()
    assert IMPORT_URL in changelist
    page = client.get(IMPORT_URL)
    assert page.status_code == 200
    assert 'name="archive"' in page.content.decode()
    folder, _ = build_download(tmp_path, SYSTEMS["fucp"])
    with as_tgz(folder, tmp_path / f"{TOP}.tgz").open("rb") as upload:
        response = client.post(IMPORT_URL, {"archive": upload, "family": "", "production_repeats": "10"}, follow=True)
    assert response.redirect_chain == [("/admin/templates_app/template/", 302)]
    shown = response.content.decode()
    assert "Imported 3 CHARMM-GUI stage templates" in shown
    assert f"{MEMBRANE_BUILDER}: step7.1 production v1" in shown
    protocol_line = "step6.1 equilibration → step6.2 equilibration → step7.1 production x 10"
    assert f"Protocol &#x27;{MEMBRANE_BUILDER}&#x27;: {protocol_line}" in shown
    assert list(Template.objects.order_by("stage").values_list("stage", "family")) == [
        (1, MEMBRANE_BUILDER),
        (2, MEMBRANE_BUILDER),
        (3, MEMBRANE_BUILDER),
    ]
    assert set(TemplateVersion.objects.values_list("created_by", flat=True)) == {lab_admin.pk}


@pytest.mark.django_db
def test_the_admin_shows_the_coded_refusal(client, lab_admin, tmp_path: Path) -> None:
    client.force_login(lab_admin)
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    with hostile_tgz(tmp_path, folder, link=True).open("rb") as upload:
        refused = client.post(IMPORT_URL, {"archive": upload})
    assert refused.status_code == 200
    assert "[ARCHIVE_LINK]" in refused.content.decode()
    not_archive = client.post(IMPORT_URL, {"archive": io.BytesIO(b"x")})
    assert not_archive.status_code == 200
    assert "CHARMM_GUI_NOT_AN_ARCHIVE" in not_archive.content.decode()
    assert Template.objects.exists() is False


@pytest.mark.django_db
def test_members_and_staff_without_the_permission_cannot_import(client, member, tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    archive = as_zip(folder, tmp_path / f"{TOP}.zip")
    client.force_login(member)
    with archive.open("rb") as upload:
        refused = client.post(IMPORT_URL, {"archive": upload})
    assert refused.status_code == 302
    assert refused["Location"].startswith("/admin/login/")
    staff = UserFactory(username="staff_t", is_staff=True)
    client.force_login(staff)
    with archive.open("rb") as upload:
        assert client.post(IMPORT_URL, {"archive": upload}).status_code == 403
    assert Template.objects.exists() is False
    staff.user_permissions.add(Permission.objects.get(codename="add_template"))
    assert client.get(IMPORT_URL).status_code == 403  # the import makes a protocol too
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_protocol", "change_protocol"]))
    assert client.get(IMPORT_URL).status_code == 200


@pytest.mark.django_db
def test_the_command_imports_and_says_what_changed(tmp_path: Path) -> None:
    folder, _ = build_download(tmp_path, SYSTEMS["tlr4"])
    out = io.StringIO()
    call_command("import_charmm_gui", str(folder), "--family", "Solvated proteins", stdout=out)
    assert out.getvalue().splitlines() == [
        "1. Solvated proteins: step4 equilibration [solvated-proteins-step4-equilibration] v1 (new)",
        "2. Solvated proteins: step5 production [solvated-proteins-step5-production] v1 (new)",
        "protocol 'Solvated proteins' [solvated-proteins]: step4 equilibration → step5 production",
    ]
    again = io.StringIO()
    call_command(
        "import_charmm_gui",
        str(as_zip(folder, tmp_path / "d.zip")),
        "--family",
        "Solvated proteins",
        "--production-repeats",
        "10",
        stdout=again,
    )
    lines = again.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines[:2]] == ["(unchanged)", "(unchanged)"]
    assert lines[2] == "protocol 'Solvated proteins' [solvated-proteins]: step4 equilibration → step5 production x 10"
    with pytest.raises(CommandError, match="--production-repeats"):
        call_command("import_charmm_gui", str(folder), "--production-repeats", "0")
    with pytest.raises(CommandError, match=r"^\[CHARMM_GUI_NO_STAGES\] "):
        call_command("import_charmm_gui", str(folder / "namd" / "toppar"))
