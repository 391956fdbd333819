"""Preview latency of each built-in template: typed values + sandboxed render + NAMD config check.

Baseline, measured in the same run: rendering the same body with plain (unsandboxed) Jinja2 and no
checks, so the ratio shows what safety costs. Needs no database access or cluster.
"""

from __future__ import annotations

import json
import os

import django
from jinja2 import Environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()  # the built-in definitions live beside their model; rendering itself is pure

from bench.report import summarize, time_calls  # noqa: E402
from templates_app.builtin import BUILTIN_TEMPLATES  # noqa: E402
from templates_app.rendering import render_config  # noqa: E402
from templates_app.specs import specs_from_json  # noqa: E402

REPEAT = 500


def main() -> None:
    plain = Environment(keep_trailing_newline=True)
    plain.filters["onoff"] = lambda value: "on" if value else "off"
    rows, preview_ms, ratios = {}, {}, {}
    for builtin in BUILTIN_TEMPLATES:
        specs = specs_from_json(builtin.variables)
        defaults = {spec.name: spec.default for spec in specs}
        compiled = plain.from_string(builtin.body)
        preview = summarize(time_calls(lambda: render_config(builtin.body, specs, {}), repeat=REPEAT))  # noqa: B023
        baseline = summarize(time_calls(lambda: compiled.render(defaults), repeat=REPEAT))  # noqa: B023
        rows[f"{builtin.slug} preview"] = preview
        rows[f"{builtin.slug} plain jinja"] = baseline
        preview_ms[builtin.slug] = round(preview["median_ms"], 3)
        ratios[builtin.slug] = round(preview["median_ms"] / baseline["median_ms"], 1)
    print(f"Template preview, {REPEAT} runs each (median)")
    print(f"{'case':<44}{'median ms':>12}{'p95 ms':>12}{'per s':>12}")
    for name, row in rows.items():
        print(f"{name:<44}{row['median_ms']:>12.3f}{row['p95_ms']:>12.3f}{row['per_s']:>12.0f}")
    figures = {
        "bench": "render",
        "preview_ms": preview_ms,
        "preview_ms_max": max(preview_ms.values()),
        "preview_vs_plain_jinja": ratios,
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
