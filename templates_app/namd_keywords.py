"""NAMD's own table of config keywords and Tcl command names, as NAMD 2.14 and 3.0 declare them.

Owns the data in `namd_keywords.json`: every keyword NAMD's config parser accepts (its kind, parent
switch, whether it may repeat, its range and the versions that declare it) and the Tcl commands NAMD
registers. Pure and read once at import; knows nothing of Django, SSH or how a config is checked.

Where the data came from: it was read by hand from NAMD's C++ source, public copies on GitHub named
with their commits in the JSON's "source" field. Each keyword is one `opts.require`, `opts.optional`,
`opts.requireB` or `opts.optionalB` call in the `SimParameters::config_parser*` functions of
`src/SimParameters.C`; its kind is the C++ type of the variable the call fills (`src/SimParameters.h`).
The commands are the `Tcl_CreateCommand`/`Tcl_CreateObjCommand` calls of `src/ScriptTcl.C` and of
`tcl_vector_math_init()` (`src/TclCommands.C`, `src/TclVec.C`).

To regenerate or extend it (say for a new NAMD release): read those functions of that release and
add one JSON line per call, keeping NAMD's spelling of the name. kind: optionalB/requireB -> "bool",
int -> "int", BigReal -> "float", zVector -> "vector", a char array or PARSE_STRING -> "string" (or
"file" when the option names an input file, "output": true when it names an output path),
PARSE_MULTIPLES -> "multiple": true, PARSE_ANYTHING -> "anything". parent is the call's parent
argument lower-cased (null for "main"); range comes from `opts.range(...)`; a keyword declared only
under an `#ifdef` gets "build"; a difference of one version goes in "version_overrides". Add the new
version to VERSIONS and to "versions", then run tests/templates_app/test_namd_keywords.py.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

DATA_PATH = Path(__file__).with_name("namd_keywords.json")
KINDS = frozenset({"int", "float", "bool", "string", "vector", "file", "anything"})
RANGES = frozenset({"positive", "not_negative"})
VERSIONS = ("2.14", "3.0")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class Keyword:
    name: str  # NAMD's spelling; NAMD itself matches names case-insensitively
    kind: str  # one of KINDS
    parent: str | None  # lower-cased parent keyword; NAMD ignores this keyword while the parent is off
    multiple: bool  # PARSE_MULTIPLES: may be given many times
    range: str | None  # "positive", "not_negative" or None
    versions: tuple[str, ...]  # the NAMD versions that declare it
    is_output: bool  # names an output path, not an input file
    build: str | None = None  # preprocessor condition it is declared under, e.g. "#ifdef DPMTA"


def _keyword(entry: dict[str, Any]) -> Keyword:
    keyword = Keyword(
        name=entry["name"],
        kind=entry["kind"],
        parent=entry["parent"],
        multiple=entry["multiple"],
        range=entry["range"],
        versions=tuple(entry["versions"]),
        is_output=entry.get("output", False),
        build=entry.get("build"),
    )
    if keyword.kind not in KINDS:
        raise ValueError(f"{keyword.name}: unknown kind {keyword.kind!r} in {DATA_PATH.name}")
    if keyword.range is not None and keyword.range not in RANGES:
        raise ValueError(f"{keyword.name}: unknown range {keyword.range!r} in {DATA_PATH.name}")
    return keyword


_DATA: dict[str, Any] = json.loads(DATA_PATH.read_text(encoding="utf-8"))
_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    entry["name"].lower(): entry["version_overrides"] for entry in _DATA["keywords"] if "version_overrides" in entry
}

SOURCE: str = _DATA["source"]
DUPLICATE_IS_ERROR: bool = _DATA["duplicate_is_error"]
KEYWORDS: dict[str, Keyword] = {entry["name"].lower(): _keyword(entry) for entry in _DATA["keywords"]}
COMMANDS: frozenset[str] = frozenset(command.lower() for command in _DATA["commands"])
COMMANDS_AS_REGISTERED: tuple[str, ...] = tuple(_DATA["commands_as_registered"])
# the keywords a config may still change after its first run/minimize (SimParameters::scriptSet)
SCRIPT_SETTABLE: frozenset[str] = frozenset(name.lower() for name in _DATA["script_settable"])


def keyword(name: str) -> Keyword | None:
    """The keyword NAMD knows by this name, in any letter case, or None."""
    return KEYWORDS.get(name.lower())


def suggestions(name: str, limit: int = 3, cutoff: float = 0.6) -> list[str]:
    """The nearest keyword names, in NAMD's spelling, for a "did you mean" hint."""
    matches = difflib.get_close_matches(name.lower(), KEYWORDS, n=limit, cutoff=cutoff)
    return [KEYWORDS[match].name for match in matches]


def for_version(version: str) -> dict[str, Keyword]:
    """The keywords one NAMD version declares ("3.0.1" counts as "3.0"); raises ValueError for others."""
    match = _MAJOR_MINOR.match(version.strip())
    major_minor = f"{match[1]}.{match[2]}" if match else version
    if major_minor not in VERSIONS:
        raise ValueError(f"no NAMD keyword table for version {version!r}; known: {', '.join(VERSIONS)}")
    return dict(_for_version(major_minor))  # a copy, so a caller cannot change the cached table


@cache
def _for_version(version: str) -> dict[str, Keyword]:
    table = {}
    for key, kw in KEYWORDS.items():
        if version in kw.versions:
            table[key] = replace(kw, **_OVERRIDES.get(key, {}).get(version, {}))
    return table
