"""Importing a CHARMM-GUI NAMD download as one template family: a template per stage file.

Owns what a CHARMM-GUI download looks like (its `namd/step*.inp` stage files, or stage files at its
top; its `toppar/` folder), how a stage file becomes a template body (top-level `set NAME VALUE`
lines become typed variables, and so does a literal `outputName` line; everything else is kept
verbatim and shielded from Jinja2), and the import service that saves the family and its protocol
(the stages in step order, each continuing from the one before through `inputname`) in one
transaction. The pure parts (stage discovery, `set` line conversion, Jinja2 escaping) take and
return plain values; only `import_charmm_gui` touches the database and the asset store.

Knows nothing of jobs: what a member uploads with a job (their own CHARMM-GUI archive with the
PSF, PDB, restraints...) is never an asset here; only the `toppar/` files the stage configs read are.
"""

from __future__ import annotations

import keyword
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from accounts.models import User
from jobs.archives import ArchiveRefused, archive_kind, unpack_archive
from portal.errors import InvalidInput, TemplateError
from templates_app.assets import StoredAsset, store_asset
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.namd_config import check_config
from templates_app.protocol_services import save_protocol
from templates_app.rendering import MAX_BODY_LENGTH, VARIABLE_NAME_RE
from templates_app.services import config_path, save_template_version

NAMD_FOLDER = "namd"
TOPPAR_FOLDER = "toppar"
SOLUTION_BUILDER = "CHARMM-GUI Solution Builder"
MEMBRANE_BUILDER = "CHARMM-GUI Membrane Builder"
OTHER_BUILDER = "CHARMM-GUI"
# step4_equilibration.inp, step6.1_equilibration.inp, step7_production.inp
STAGE_FILE_RE = re.compile(r"^step(?P<number>\d{1,3}(?:\.\d{1,3})?)(?:_(?P<what>[A-Za-z0-9_.+-]{1,60}))?\.inp$")
# A top-level `set NAME VALUE` with one literal value, then an optional `;` and a comment after it
# (Tcl reads `#` as a comment only where a command starts, so without the `;` it would be an argument).
SET_LINE_RE = re.compile(
    r"^(?P<head>[ \t]*set[ \t]+(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]+)"
    r"(?P<value>[A-Za-z0-9_.+-]{1,100})"
    r"(?P<tail>[ \t]*(?:;[ \t]*(?:#.*)?)?)$"
)
# A top-level `outputName LITERAL` keyword line (NAMD's keywords ignore case), the same value and tail rules.
OUTPUT_NAME_LINE_RE = re.compile(
    r"^(?P<head>[ \t]*(?i:outputname)[ \t]+)"
    r"(?P<value>[A-Za-z0-9_.+-]{1,100})"
    r"(?P<tail>[ \t]*(?:;[ \t]*(?:#.*)?)?)$"
)
OUTPUT_NAME_VARIABLE = "outputname"
INTEGER_RE = re.compile(r"^[-+]?\d+$")
FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
TEXT_PATTERN = r"[A-Za-z0-9_.+-]{1,100}"
# Names Jinja2 reads as something else than a variable ({{ none }} is None, {{ not }} an operator...).
JINJA_RESERVED = frozenset({"true", "false", "none", "loop", "self", "caller", "varargs", "kwargs", "super"})
JINJA_OPENER_RE = re.compile(r"\{[{%#]")
# What ends a `{% raw %}` block early (jinja2.lexer's raw rule): such a line is escaped brace by brace.
JINJA_ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw")
CHARMM_GUI_INPUT_VARIABLE = "inputname"  # `set inputname step4_equilibration`: the stage before's output name
MAX_FAMILY_LENGTH = 80
MAX_STAGE_BYTES = 4 * MAX_BODY_LENGTH
MAX_FOLDER_FILES = 20_000
MAX_ROOT_DEPTH = 3  # folders wrapping the download (charmm-gui-1234567890/, a user's own folder...)
MAX_HELP_LENGTH = 200


# ------------------------------------------------------------------ stage discovery (pure)


@dataclass(frozen=True)
class Stage:
    relpath: str  # in the download, e.g. "namd/step4_equilibration.inp"
    number: tuple[int, ...]  # (4,) or (6, 1): the order CHARMM-GUI runs them in

    @property
    def filename(self) -> str:
        return PurePosixPath(self.relpath).name

    @property
    def title(self) -> str:
        """'step4 equilibration' for step4_equilibration.inp."""
        return PurePosixPath(self.relpath).stem.replace("_", " ")

    @property
    def category(self) -> str:
        return stage_category(self.filename)


@dataclass(frozen=True)
class Download:
    root: str  # the folder of the download inside what was given ("" or "charmm-gui/")
    workdir: str  # where the stages run, relative to root: "namd" or ""
    stages: list[Stage]


def stage_number(filename: str) -> tuple[int, ...] | None:
    """(6, 1) for step6.1_equilibration.inp; None when the file is not a stage file."""
    match = STAGE_FILE_RE.match(filename)
    return tuple(int(part) for part in match["number"].split(".")) if match else None


def stage_category(filename: str) -> str:
    """The template category a stage's name says (equilibration, production, minimization, other)."""
    words = re.split(r"[_.+-]", PurePosixPath(filename).stem.lower())
    for prefix, category in (
        ("equil", Template.Category.EQUILIBRATION),
        ("prod", Template.Category.PRODUCTION),
        ("mini", Template.Category.MINIMIZATION),
    ):
        if any(word.startswith(prefix) for word in words):
            return category.value
    return Template.Category.OTHER.value


def _stages_in(relpaths: set[str], folder: str) -> list[Stage]:
    stages = []
    for relpath in relpaths:
        path = PurePosixPath(relpath)
        if str(path.parent) == (folder or ".") and (number := stage_number(path.name)) is not None:
            stages.append(Stage(relpath, number))
    return sorted(stages, key=lambda stage: (stage.number, stage.relpath))


def find_stages(relpaths: Iterable[str]) -> Download:
    """The stage files of a download, in step order, and where they run. Raises InvalidInput (CHARMM_GUI_NO_STAGES)."""
    # namd/step*.inp wins over stage files at the top, where CHARMM-GUI keeps its CHARMM inputs of the same
    # names; folders wrapping the download (charmm-gui-1234567890/) are looked through.
    remaining = {PurePosixPath(relpath).as_posix() for relpath in relpaths}
    root = ""
    for _ in range(MAX_ROOT_DEPTH + 1):
        for workdir in (NAMD_FOLDER, ""):
            stages = _stages_in(remaining, workdir)
            if stages:
                prefixed = [Stage(root + stage.relpath, stage.number) for stage in stages]
                return Download(root=root, workdir=workdir, stages=prefixed)
        tops = {PurePosixPath(relpath).parts[0] for relpath in remaining}
        if len(tops) != 1 or any(len(PurePosixPath(relpath).parts) < 2 for relpath in remaining):
            break
        (top,) = tops
        root += top + "/"
        remaining = {relpath.removeprefix(top + "/") for relpath in remaining}
    raise InvalidInput(
        "No NAMD stage files were found (namd/step*.inp, e.g. namd/step4_equilibration.inp). "
        "Import the whole NAMD download CHARMM-GUI gives (the .tgz with its namd/ folder).",
        code="CHARMM_GUI_NO_STAGES",
    )


def builder_family(stages: list[Stage]) -> str:
    """The family a download's stage names point to: Membrane Builder (step6.x/step7), Solution Builder (step4/5)."""
    names = [stage.filename for stage in stages]
    if any(re.match(r"^step6\.\d+_equil", name) or re.match(r"^step7(\.\d+)?_prod", name) for name in names):
        return MEMBRANE_BUILDER
    if any(re.match(r"^step4_equil", name) or re.match(r"^step5_prod", name) for name in names):
        return SOLUTION_BUILDER
    return OTHER_BUILDER


def checked_family(family: str | None, stages: list[Stage]) -> str:
    """The family to import into: the admin's, or the builder's. Raises InvalidInput."""
    if family is None or not family.strip():
        return builder_family(stages)
    family = " ".join(family.split())
    if len(family) > MAX_FAMILY_LENGTH or not family.isprintable():
        raise InvalidInput(
            f"A family name is one line of at most {MAX_FAMILY_LENGTH} characters; choose a shorter one.",
            code="CHARMM_GUI_FAMILY_INVALID",
        )
    return family


def toppar_folder(path: str) -> str | None:
    """The `toppar/` folder a parameter file lies in ("namd/toppar"), None outside one."""
    parts = PurePosixPath(path).parts
    return "/".join(parts[: parts.index(TOPPAR_FOLDER) + 1]) if TOPPAR_FOLDER in parts[:-1] else None


# ------------------------------------------------------------------ stage file -> template body (pure)


def escape_jinja(text: str) -> str:
    """`text` as a Jinja2 body that renders to itself: lines with `{{`, `{%` or `{#` wrapped in raw tags."""
    return "".join(_escaped_line(line) for line in text.splitlines(keepends=True))


def _escaped_line(line: str) -> str:
    content = line.rstrip("\r\n")
    ending = line[len(content) :]
    if not JINJA_OPENER_RE.search(content):
        return line
    if JINJA_ENDRAW_RE.search(content):
        # a raw block would end inside the line: give every brace as an expression, so none pairs with text
        return content.replace("{", '{{ "{" }}') + ending
    return "{% raw %}" + content + "{% endraw %}" + ending


def top_level_lines(text: str) -> list[bool]:
    """For each line, whether a Tcl command starts it at the top level (not in braces, quotes, brackets)."""
    # (nor on a continued line): only there may a `set` become a variable without changing what the config does
    starts: list[bool] = []
    depth = brackets = 0
    in_quote = continued = False
    for line in text.splitlines():
        starts.append(depth == 0 and brackets == 0 and not in_quote and not continued)
        at_word_start, at_command_start = True, not continued
        index = 0
        while index < len(line):
            char = line[index]
            if char == "\\":
                index += 2
                at_word_start = at_command_start = False
                continue
            if depth == 0 and not in_quote and at_command_start and char == "#":
                break  # a comment to the end of the line: its braces do not count at the top level
            if depth > 0:
                depth += {"{": 1, "}": -1}.get(char, 0)
            elif char == "{" and at_word_start and not in_quote:
                depth = 1
            elif char == '"' and (at_word_start or in_quote):
                in_quote = not in_quote
            elif char == "[":
                brackets += 1
            elif char == "]" and brackets:
                brackets -= 1
            separator = char in " \t;[" and depth == 0 and not in_quote
            at_word_start = separator
            at_command_start = (char == ";" or (char in " \t" and at_command_start)) and depth == 0 and not in_quote
            index += 1
        trailing = len(line) - len(line.rstrip("\\"))
        continued = trailing % 2 == 1
    return starts


def _variable_for(name: str, value: str, *, where: str) -> dict[str, Any]:
    """A typed variable whose default renders back to `value` exactly."""
    definition: dict[str, Any] = {"name": name.lower(), "help": where[:MAX_HELP_LENGTH]}
    if INTEGER_RE.fullmatch(value) and str(int(value)) == value:
        return {**definition, "type": "integer", "default": int(value)}
    if FLOAT_RE.fullmatch(value) and str(float(value)) == value:
        return {**definition, "type": "float", "default": float(value)}
    return {**definition, "type": "text", "default": value, "pattern": TEXT_PATTERN}


def convert_stage(text: str, *, filename: str) -> tuple[str, list[dict[str, Any]]]:
    """A stage file's template body and variables; the body rendered with the defaults gives `text` back."""
    # A `set` stays plain Tcl when its name, lower-cased, is no valid variable name, is Jinja2's, is taken by an
    # earlier line, or is set anywhere else in the config too (in an `if`, a proc...): a variable must own it.
    text = text.replace("\r\n", "\n")  # Jinja2 renders every line ending as "\n"
    lines = text.splitlines(keepends=True)
    starts = top_level_lines(text)
    assigned: dict[str, int] = {}
    for match in re.finditer(r"(?:^|[\s;\[{])set\s+([A-Za-z_][A-Za-z0-9_]*)\b", text):
        assigned[match[1]] = assigned.get(match[1], 0) + 1
    sets: dict[int, re.Match[str]] = {}  # line index -> the `set` line that becomes a variable
    taken: set[str] = set()
    for index, (line, is_top) in enumerate(zip(lines, starts, strict=True)):
        match = SET_LINE_RE.match(line.rstrip("\n")) if is_top else None
        name = match["name"].lower() if match else ""
        if (
            match is not None
            and VARIABLE_NAME_RE.fullmatch(name) is not None
            and name not in taken
            and name not in JINJA_RESERVED
            and not keyword.iskeyword(name)
            and assigned.get(match["name"]) == 1
        ):
            sets[index] = match
            taken.add(name)
    output_line = _output_name_line(lines, starts, sets.values(), assigned)
    variables: list[dict[str, Any]] = []
    body: list[str] = []
    for index, line in enumerate(lines):
        content = line.rstrip("\n")
        match = sets.get(index) or (output_line[1] if output_line and output_line[0] == index else None)
        if match is None:
            body.append(_escaped_line(line))
            continue
        where = f"From {filename} line {index + 1}: {content.strip()}"
        if index in sets:
            name = match["name"].lower()
            variables.append(_variable_for(name, match["value"], where=where))
        else:
            name = OUTPUT_NAME_VARIABLE
            if OUTPUT_NAME_VARIABLE not in taken:
                variables.append(_output_name_variable(match["value"], where=where))
        body.append(match["head"] + "{{ " + name + " }}" + _escaped_line(match["tail"]) + line[len(content) :])
    return "".join(body), variables


def _output_name_line(
    lines: list[str], starts: list[bool], sets: Iterable[re.Match[str]], assigned: dict[str, int]
) -> tuple[int, re.Match[str]] | None:
    """The one top-level `outputName LITERAL` line a stage's `outputname` variable may own, with its index.

    CHARMM-GUI's production stages write `outputName step5_production;` as a keyword line, not a `set`: as a
    variable, each repeat of the stage writes outputs of its own. It may own the line when no `set` of that
    name is in the config, or when the variable comes from a `set outputname` of the same literal.
    """
    found = [
        (index, match)
        for index, (line, is_top) in enumerate(zip(lines, starts, strict=True))
        if is_top and (match := OUTPUT_NAME_LINE_RE.match(line.rstrip("\n")))
    ]
    if len(found) != 1:
        return None
    index, match = found[0]
    owner = next((set_line for set_line in sets if set_line["name"].lower() == OUTPUT_NAME_VARIABLE), None)
    if owner is not None:
        is_same_text = _variable_for(OUTPUT_NAME_VARIABLE, owner["value"], where="")["default"] == match["value"]
        return (index, match) if is_same_text else None
    if any(name.lower() == OUTPUT_NAME_VARIABLE for name in assigned):
        return None  # a `set outputname` that stays Tcl (in an `if`, set twice...): the line is not ours to own
    return index, match


def _output_name_variable(value: str, *, where: str) -> dict[str, Any]:
    """The output name as text, whatever it looks like: the steps of a pipeline give it names of their own."""
    return {
        "name": OUTPUT_NAME_VARIABLE,
        "help": where[:MAX_HELP_LENGTH],
        "type": "text",
        "default": value,
        "pattern": TEXT_PATTERN,
    }


# ------------------------------------------------------------------ the import (database and asset store)


def import_charmm_gui(
    *, source: Path, user: User | None, family: str | None = None, production_repeats: int | None = None
) -> list[Template]:
    """One template per stage of a CHARMM-GUI download (folder or .tgz/.tar.gz/.zip), in step order, and the
    family's protocol of those stages (`family_protocol`), its last production stage run `production_repeats` times.

    Re-importing a family gives its templates new versions only where something changed, and its protocol the
    stages of the download (each keeping the values, resources, recipe and, without `production_repeats`, the
    repeat count it had). Raises InvalidInput (CHARMM_GUI_*, ARCHIVE_*) or TemplateError (CHARMM_GUI_STAGE_INVALID);
    saves nothing then.
    """
    with tempfile.TemporaryDirectory(prefix="charmm-gui-") as scratch:
        top = _unpacked(source, Path(scratch))
        files = _files_under(top)
        download = find_stages(files)
        family = checked_family(family, download.stages)
        prepared = [_prepared_stage(stage, download, files) for stage in download.stages]
        folders = sorted({folder for stage in prepared for folder in stage.toppar_folders})
        assets = [
            store_asset(relpath.removeprefix(download.root), files[relpath])
            for relpath in sorted(files)
            if any(relpath.startswith(download.root + folder + "/") for folder in folders)
        ]
        return _save_family(
            family=family,
            download=download,
            prepared=prepared,
            assets=assets,
            user=user,
            production_repeats=production_repeats,
        )


def family_protocol(family: str) -> Protocol:
    """The protocol the import made of a family's stages (it bears the family's name)."""
    return Protocol.objects.get(name=family, family=family)


@dataclass(frozen=True)
class _PreparedStage:
    stage: Stage
    body: str
    variables: list[dict[str, Any]]
    toppar_folders: frozenset[str]  # relative to the download's root


def _unpacked(source: Path, scratch: Path) -> Path:
    """The folder holding the download: `source` itself, or the archive unpacked into `scratch`."""
    if source.is_dir():
        return source
    if not source.is_file():
        raise InvalidInput(
            "The CHARMM-GUI download was not found; give its folder or its .tgz, .tar.gz or .zip archive.",
            code="CHARMM_GUI_SOURCE_MISSING",
        )
    kind = archive_kind(source.name)
    if kind is None:
        raise InvalidInput(
            f"'{source.name}' is not an archive the portal reads; give the .tgz (or .tar.gz, .zip) CHARMM-GUI gave.",
            code="CHARMM_GUI_NOT_AN_ARCHIVE",
        )
    destination = scratch / "download"
    try:
        unpack_archive(source, destination, kind=kind)
    except ArchiveRefused as exc:
        raise InvalidInput(exc.message, code=exc.code, details={"member": exc.member}) from exc
    return destination


def _files_under(top: Path) -> dict[str, Path]:
    """Every file of a download by its relative path. Raises InvalidInput for links and too many files."""
    files: dict[str, Path] = {}
    for entries, found in enumerate(top.rglob("*"), start=1):
        relpath = found.relative_to(top).as_posix()
        if found.is_symlink():
            raise InvalidInput(
                f"'{relpath}' is a symbolic link; import a copy of the download with the files in place of links.",
                code="CHARMM_GUI_LINK",
            )
        if found.is_file():
            files[relpath] = found
        if entries > MAX_FOLDER_FILES:
            raise InvalidInput(
                f"The download holds more than {MAX_FOLDER_FILES:,} files and folders; "
                "import the CHARMM-GUI download alone.",
                code="CHARMM_GUI_TOO_MANY_FILES",
            )
    return files


def _prepared_stage(stage: Stage, download: Download, files: dict[str, Path]) -> _PreparedStage:
    """A stage's body, variables and the toppar folders it reads. Raises InvalidInput or TemplateError."""
    path = files[stage.relpath]
    if path.stat().st_size > MAX_STAGE_BYTES:
        raise InvalidInput(
            f"{stage.relpath} is too large for a NAMD config ({path.stat().st_size:,} bytes); is it the right file?",
            code="CHARMM_GUI_STAGE_TOO_LARGE",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{stage.relpath} is not UTF-8 text; import the NAMD files as CHARMM-GUI gave them.",
            code="CHARMM_GUI_STAGE_NOT_TEXT",
        ) from exc
    text = text.replace("\r\n", "\n")
    check = check_config(text, config_path=config_path(download.workdir), config_only=True)
    if check.errors:
        raise _stage_error(stage, [(p.code, p.message, p.line, p.file) for p in check.errors])
    folders: set[str] = set()
    for read in check.files_read:
        folder = toppar_folder(read.path) if read.keyword.lower() == "parameters" else None
        if folder is None:
            continue
        folders.add(folder)
        if download.root + read.path not in files:
            raise InvalidInput(
                f"{stage.relpath} line {read.line} reads {read.path}, which the download does not hold; "
                "import the complete CHARMM-GUI download with its toppar folder.",
                code="CHARMM_GUI_TOPPAR_MISSING",
                details={"file": stage.relpath, "line": read.line, "path": read.path},
            )
    body, variables = convert_stage(text, filename=stage.relpath.removeprefix(download.root))
    return _PreparedStage(stage, body, variables, frozenset(folders))


def _stage_error(stage: Stage, problems: list[tuple[str, str, int | None, str]]) -> TemplateError:
    code, message, line, file = problems[0]
    where = f"{file or stage.relpath}{f' line {line}' if line else ''}"
    return TemplateError(
        f"{where}: [{code}] {message} — fix the stage file and import again; nothing was imported.",
        code="CHARMM_GUI_STAGE_INVALID",
        details={
            "file": stage.relpath,
            "problems": [{"code": c, "message": m, "line": n, "file": f or stage.relpath} for c, m, n, f in problems],
        },
    )


@transaction.atomic
def _save_family(
    *,
    family: str,
    download: Download,
    prepared: list[_PreparedStage],
    assets: list[StoredAsset],
    user: User | None,
    production_repeats: int | None,
) -> list[Template]:
    templates = []
    for order, item in enumerate(prepared, start=1):
        name = f"{family}: {item.stage.title}"
        template = _family_template(family=family, name=name, stage=item.stage, order=order, total=len(prepared))
        try:
            save_template_version(
                template=template,
                body=item.body,
                variables=item.variables,
                user=user,
                workdir=download.workdir,
                assets=assets,
            )
        except TemplateError as exc:
            problems = exc.details.get("problems") or [{"code": exc.code, "message": exc.user_message}]
            raise _stage_error(
                item.stage, [(p["code"], p["message"], p.get("line"), p.get("file", "")) for p in problems]
            ) from exc
        templates.append(template)
    _save_family_protocol(
        family=family,
        stages=list(zip([item.stage for item in prepared], templates, strict=True)),
        production_repeats=production_repeats,
    )
    return templates


def _save_family_protocol(
    *, family: str, stages: list[tuple[Stage, Template]], production_repeats: int | None
) -> Protocol:
    """The family's protocol: its stages in step order, each after the first given the output name of the one before
    in `inputname`, as CHARMM-GUI's runner does. Raises InvalidInput (CHARMM_GUI_NAME_TAKEN, _PROTOCOL_INVALID)."""
    protocol = Protocol.objects.select_for_update().filter(name=family).first()
    if protocol is not None and protocol.family != family:
        raise InvalidInput(
            f"A protocol named '{family}' already exists and is not this family's; rename it, "
            "or import under another family name.",
            code="CHARMM_GUI_NAME_TAKEN",
        )
    if protocol is None:
        protocol = Protocol(
            name=family,
            slug=_free_slug(Protocol, family),
            family=family,
            description=f"The stages of a {family} download in step order, each reading the outputs of the one "
            "before (inputname), as CHARMM-GUI's runner does.",
        )
    earlier = {stage.template_id: stage for stage in protocol.stages.all()} if protocol.pk else {}
    productions = [index for index, (stage, _) in enumerate(stages) if stage.category == Template.Category.PRODUCTION]
    drafts = []
    for index, (stage, template) in enumerate(stages):
        kept = earlier.get(template.pk)
        repeat = kept.repeat if kept else 1
        if production_repeats is not None and productions and index == productions[-1]:
            repeat = production_repeats
        drafts.append(
            ProtocolStage(
                position=index + 1,
                name=stage.title,
                template=template,
                repeat=repeat,
                values=kept.values if kept else {},
                resources=kept.resources if kept else {},
                recipe_name=kept.recipe_name if kept else "",
                continuation=ProtocolStage.Continuation.CHARMM_GUI if index else ProtocolStage.Continuation.FIRST,
                input_variable=CHARMM_GUI_INPUT_VARIABLE,
            )
        )
    try:
        return save_protocol(protocol=protocol, stages=drafts)
    except InvalidInput as exc:
        raise InvalidInput(
            f"The stages make no protocol: {exc.details['problems'][0]['problem']} Fix the stage files and import "
            "again; nothing was imported.",
            code="CHARMM_GUI_PROTOCOL_INVALID",
            details=exc.details,
        ) from exc


def _family_template(*, family: str, name: str, stage: Stage, order: int, total: int) -> Template:
    """The family's template of this name (its stage and category brought up to date), or a new one."""
    if len(name) > Template._meta.get_field("name").max_length:
        raise InvalidInput(
            f"The template name '{name}' would be too long; import under a shorter family name.",
            code="CHARMM_GUI_NAME_TOO_LONG",
        )
    template = Template.objects.select_for_update().filter(name=name).first()
    if template is not None and template.family != family:
        raise InvalidInput(
            f"A template named '{name}' already exists outside the family '{family}'; rename it, "
            "or import under another family name.",
            code="CHARMM_GUI_NAME_TAKEN",
        )
    if template is None:
        return Template.objects.create(
            name=name,
            slug=_free_slug(Template, name),
            family=family,
            stage=order,
            category=stage.category,
            description=f"Stage {order} of {total} of a {family} download ({stage.filename}). Members upload "
            "their own CHARMM-GUI archive of the system with the job.",
        )
    if (template.stage, template.category) != (order, stage.category):
        template.stage, template.category = order, stage.category
        template.save(update_fields=["stage", "category"])
    return template


def _free_slug(model: type[Template] | type[Protocol], name: str) -> str:
    max_length = model._meta.get_field("slug").max_length
    base = slugify(name.replace(".", "-"))[:max_length].strip("-") or "charmm-gui"
    slug, suffix = base, 1
    while model.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base[: max_length - len(str(suffix)) - 1].rstrip('-')}-{suffix}"
    return slug
