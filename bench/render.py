"""Preview latency of each built-in template: typed values + sandboxed render + NAMD config read
through Tcl and checked + batch script + cost estimate; and reading a real 50-parameter CHARMM-GUI
config (`step4_equilibration.inp` of tests/fixtures/namd_configs) through the Tcl reader.

Baseline, measured in the same run: rendering the same body with plain (unsandboxed) Jinja2 and no
checks, so the ratio shows what safety and reading the config as NAMD does cost; and the sandboxed Tcl
process reading an empty config, the floor of any reading. The reader's cache
of config-only readings is cleared before every call: a member's preview changes its values.
Needs no database access or cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import django
from jinja2 import Environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()  # the built-in definitions live beside their model; rendering itself is pure

import uuid  # noqa: E402
from decimal import Decimal  # noqa: E402

from bench.report import summarize, time_calls  # noqa: E402
from templates_app import batch_script  # noqa: E402
from templates_app.builtin import BUILTIN_TEMPLATES  # noqa: E402
from templates_app.namd_config import _read_alone, check_config  # noqa: E402
from templates_app.namd_reader import read_config  # noqa: E402
from templates_app.rendering import render_config  # noqa: E402
from templates_app.specs import specs_from_json  # noqa: E402

REPEAT = 300
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "namd_configs"
CHARMM_GUI = CORPUS / "charmm-gui-tlr4" / "namd" / "step4_equilibration.inp"
SETTINGS = batch_script.ClusterSettings(
    profile_module_lines=("module load namd/3.0",),
    allowed_accounts=("lab",),
    allowed_qos=(),
    su_per_core_hour=Decimal("1.5"),
    su_per_gpu_hour=Decimal(0),
    partitions=(batch_script.PartitionLimits("normal", None, 4, 64, 256_000, 0),),
)
LAUNCH = batch_script.LaunchSpec(
    kind="cpu", command="srun namd2 +p{cores} {config}", module_lines=(), container_image=""
)
RESOURCES = batch_script.Resources("normal", 2, 32, 1, None, 86_400, 0, "lab", None)
INPUTS = batch_script.ScriptInputs(uuid.uuid4(), "bench run", "/scratch/alice/bench-12345678", "job.namd")


def preview(body: str, specs: list) -> None:
    _read_alone.cache_clear()
    render_config(body, specs, {})
    batch_script.render_batch_script(SETTINGS, LAUNCH, RESOURCES, INPUTS)
    batch_script.estimate_cost(SETTINGS, RESOURCES)


def main() -> None:
    plain = Environment(keep_trailing_newline=True)
    plain.filters["onoff"] = lambda value: "on" if value else "off"
    rows, preview_ms, ratios = {}, {}, {}
    for builtin in BUILTIN_TEMPLATES:
        specs = specs_from_json(builtin.variables)
        defaults = {spec.name: spec.default for spec in specs}
        compiled = plain.from_string(builtin.body)
        preview_row = summarize(time_calls(lambda: preview(builtin.body, specs), repeat=REPEAT))  # noqa: B023
        baseline = summarize(time_calls(lambda: compiled.render(defaults), repeat=REPEAT))  # noqa: B023
        rows[f"{builtin.slug} preview"] = preview_row
        rows[f"{builtin.slug} plain jinja"] = baseline
        preview_ms[builtin.slug] = round(preview_row["median_ms"], 3)
        ratios[builtin.slug] = round(preview_row["median_ms"] / baseline["median_ms"], 1)
    charmm_gui = CHARMM_GUI.read_text()
    compiled = plain.from_string(charmm_gui)

    def read_charmm_gui() -> None:
        _read_alone.cache_clear()
        check = check_config(charmm_gui, config_path="namd/step4_equilibration.inp", config_only=True)
        assert sum(read.keyword == "parameters" for read in check.files_read) == 50

    reader_row = summarize(time_calls(read_charmm_gui, repeat=REPEAT))
    reader_baseline = summarize(time_calls(lambda: compiled.render({}), repeat=REPEAT))
    floor = summarize(time_calls(lambda: read_config(""), repeat=REPEAT))  # the sandboxed Tcl process alone
    rows["charmm-gui step4 (50 parameters) read"] = reader_row
    rows["charmm-gui step4 plain jinja"] = reader_baseline
    rows["tcl reader process, empty config"] = floor
    print(f"Template preview, {REPEAT} runs each (median)")
    print(f"{'case':<44}{'median ms':>12}{'p95 ms':>12}{'per s':>12}")
    for name, row in rows.items():
        print(f"{name:<44}{row['median_ms']:>12.3f}{row['p95_ms']:>12.3f}{row['per_s']:>12.0f}")
    figures = {
        "bench": "render",
        "preview_ms": preview_ms,
        "preview_ms_max": max(preview_ms.values()),
        "preview_vs_plain_jinja": ratios,
        "charmm_gui_read_ms": round(reader_row["median_ms"], 3),
        "charmm_gui_read_vs_plain_jinja": round(reader_row["median_ms"] / reader_baseline["median_ms"], 1),
        "charmm_gui_read_vs_empty_read": round(reader_row["median_ms"] / floor["median_ms"], 2),
        "reader_process_floor_ms": round(floor["median_ms"], 3),
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
