"""NAMD's keyword table read from its source: known keywords, versions, commands, lookups."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from templates_app import namd_keywords
from templates_app.namd_keywords import (
    COMMANDS,
    DUPLICATE_IS_ERROR,
    KEYWORDS,
    KINDS,
    SOURCE,
    VERSIONS,
    for_version,
    keyword,
    suggestions,
)

RAW = json.loads(namd_keywords.DATA_PATH.read_text(encoding="utf-8"))


def test_namd_3_0_declares_more_than_600_keywords_and_2_14_fewer() -> None:
    assert len(for_version("3.0")) > 600
    assert 600 < len(for_version("2.14")) < len(for_version("3.0"))


@pytest.mark.parametrize(
    ("name", "kind", "parent", "multiple", "value_range"),
    [
        ("structure", "file", None, False, None),
        ("coordinates", "file", None, False, None),
        ("parameters", "file", None, True, None),
        ("extraBondsFile", "file", "extrabonds", True, None),
        ("langevinDamping", "float", "langevin", False, "positive"),
        ("langevinTemp", "float", "langevin", False, "not_negative"),
        ("PME", "bool", None, False, None),
        ("PMETolerance", "float", "pme", False, None),
        ("PMEGridSpacing", "float", "pme", False, "not_negative"),
        ("FFTWEstimate", "bool", None, False, None),
        ("cellBasisVector1", "vector", None, False, None),
        ("cellOrigin", "vector", None, False, None),
        ("SMDk", "float", "smd", False, "not_negative"),
        ("SMDDir", "vector", "smd", False, None),
        ("alchLambda", "float", "alch", False, "not_negative"),
        ("stochRescale", "bool", None, False, None),
        ("stochRescalePeriod", "float", "stochrescale", False, "positive"),
        ("IMDon", "bool", None, False, None),
        ("IMDport", "int", "imdon", False, "positive"),
        ("splitPatch", "string", None, False, None),
        ("hgroupCutoff", "float", None, False, None),
        ("exclude", "string", None, False, None),
        ("1-4scaling", "float", "exclude", False, "positive"),
        ("DCDfile", "string", "dcdfreq", False, None),
        ("XSTfile", "string", "xstfreq", False, None),
        ("useSettle", "bool", None, False, None),
        ("pairlistsPerCycle", "int", None, False, "positive"),
        ("consexp", "int", "constraints", False, "positive"),
        ("consref", "file", "constraints", False, None),
        ("seed", "int", None, False, "positive"),
        ("tclForcesScript", "file", "tclforces", True, None),
        ("cwd", "string", None, False, None),
        ("gridforcescale", "vector", "gridforce", False, None),
        ("CUDASOAintegrate", "bool", None, False, None),
    ],
)
def test_known_keywords_have_namds_kind_parent_multiplicity_and_range(
    name: str, kind: str, parent: str | None, multiple: bool, value_range: str | None
) -> None:
    found = keyword(name)
    assert found is not None
    assert (found.name, found.kind, found.parent, found.multiple, found.range) == (
        name,
        kind,
        parent,
        multiple,
        value_range,
    )


@pytest.mark.parametrize("name", ["outputname", "restartname", "DCDfile", "velDCDfile", "XSTfile", "alchOutFile"])
def test_output_paths_are_strings_marked_as_output(name: str) -> None:
    found = keyword(name)
    assert found is not None
    assert (found.kind, found.is_output) == ("string", True)


@pytest.mark.parametrize("name", ["structure", "parameters", "cwd", "langevinDamping"])
def test_inputs_and_plain_values_are_not_outputs(name: str) -> None:
    found = keyword(name)
    assert found is not None
    assert found.is_output is False


@pytest.mark.parametrize("name", ["CUDASOAintegrate", "GPUresident", "MonteCarloPressure", "groupRestraints"])
def test_gpu_resident_and_newer_keywords_are_namd_3_0_only(name: str) -> None:
    found = keyword(name)
    assert found is not None
    assert found.versions == ("3.0",)
    assert name.lower() in for_version("3.0")
    assert name.lower() not in for_version("2.14")


def test_a_keyword_dropped_after_2_14_is_2_14_only() -> None:
    found = keyword("useCUDA2")
    assert found is not None
    assert found.versions == ("2.14",)
    assert "usecuda2" not in for_version("3.0")


def test_colvarsconfig_may_repeat_in_3_0_but_not_in_2_14() -> None:
    assert for_version("3.0")["colvarsconfig"].multiple is True
    assert for_version("2.14")["colvarsconfig"].multiple is False


def test_for_version_takes_a_patch_release_and_rejects_an_unknown_version() -> None:
    assert for_version("3.0.1") == for_version("3.0")
    assert for_version("2.14b2") == for_version("2.14")
    with pytest.raises(ValueError, match=r"2\.13"):
        for_version("2.13")


def test_for_version_returns_a_copy_the_caller_may_change() -> None:
    table = for_version("3.0")
    del table["pme"]
    assert "pme" in for_version("3.0")


def test_lookups_ignore_case_and_keep_namds_spelling() -> None:
    assert keyword("LANGEVINDAMPING") == keyword("langevindamping") == keyword("langevinDamping")
    found = keyword("pme")
    assert found is not None
    assert found.name == "PME"
    assert keyword("fooBar") is None


def test_suggestions_offer_the_nearest_names_in_namds_spelling() -> None:
    assert "langevinDamping" in suggestions("langevinDampng")
    assert "cellBasisVector1" in suggestions("CELLBASISVECTR1")
    assert len(suggestions("langevin", limit=2)) == 2
    assert suggestions("zzzzzzzzzzzz") == []


@pytest.mark.parametrize("command", ["run", "minimize", "reinitvels", "rescalevels", "checkpoint", "revert", "output"])
def test_commands_include_the_simulation_commands(command: str) -> None:
    assert command in COMMANDS


@pytest.mark.parametrize("command", ["cv", "colvarbias", "colvarvalue", "colvarfreq"])
def test_commands_include_the_colvars_commands(command: str) -> None:
    assert command in COMMANDS


def test_commands_are_lower_case_and_not_keywords_except_structure() -> None:
    assert all(command == command.lower() for command in COMMANDS)
    # `structure` is both: a keyword before startup, a command (reload the PSF) after it
    assert {command for command in COMMANDS if command in KEYWORDS} == {"structure"}


def test_every_kind_and_range_is_one_the_loader_knows() -> None:
    assert {kw.kind for kw in KEYWORDS.values()} <= KINDS
    assert {kw.range for kw in KEYWORDS.values()} <= {"positive", "not_negative", None}


def test_no_keyword_is_listed_twice() -> None:
    names = Counter(entry["name"].lower() for entry in RAW["keywords"])
    assert [name for name, count in names.items() if count > 1] == []
    assert len(KEYWORDS) == len(RAW["keywords"])


def test_every_parent_is_a_keyword_of_the_same_versions() -> None:
    orphans = [
        kw.name
        for kw in KEYWORDS.values()
        if kw.parent is not None
        and (kw.parent not in KEYWORDS or not set(kw.versions) <= set(KEYWORDS[kw.parent].versions))
    ]
    assert orphans == []


def test_every_keyword_is_declared_by_a_known_version() -> None:
    assert all(kw.versions and set(kw.versions) <= set(VERSIONS) for kw in KEYWORDS.values())


def test_a_repeated_single_keyword_is_an_error_in_namd() -> None:
    assert DUPLICATE_IS_ERROR is True
    assert "Multiple definitions of" in SOURCE


def test_the_source_names_each_copy_read_with_its_commit() -> None:
    for repository, commit in [
        ("amruthesht/namd-3.0", "7612e23b2403d0d7ea57f3b7a400280c2b3d5795"),
        ("slvbsp2009/NAMD_XLNX_ACCEL", "d1afd22915986fa24f8a4b6945d55b9b7b0ca948"),
    ]:
        assert repository in SOURCE
        assert commit in SOURCE
