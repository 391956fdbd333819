"""`manage.py check_namd_config FILE...`: lint NAMD configs as the portal and NAMD read them.

Each config is read through Tcl with the files beside it as the job's files (its folder, or
`--job-dir`, whose tree is the job folder: a CHARMM-GUI `namd/step4_equilibration.inp` is checked
with `--job-dir` at the download's top so that `../step3_input.psf` is inside). Prints one JSON
object per problem (file, line, code, severity, message), then exits 1 when any is an error.
With `--config-only` a config is checked alone, as a template body: the files it reads are
listed (as `NAMD_READS` notes), not required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from templates_app.namd_config import check_config

MAX_JOB_FILES = 20_000


class Command(BaseCommand):
    help = "Check NAMD config files as NAMD reads them (one JSON object per problem; exit 1 on an error)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--config-only", action="store_true", help="check alone, as a template body")
        parser.add_argument("--job-dir", type=Path, help="the job folder the configs sit in (default: each one's)")

    def handle(self, *args: Any, **options: Any) -> None:
        failed = False
        for path in options["files"]:
            failed |= self.check_file(path, job_dir=options["job_dir"], config_only=options["config_only"])
        if failed:
            raise SystemExit(1)

    def check_file(self, path: Path, *, job_dir: Path | None, config_only: bool) -> bool:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        top = (job_dir or path.parent).resolve()
        try:
            config_path = path.resolve().relative_to(top).as_posix()
        except ValueError as exc:
            raise CommandError(f"{path} is not inside the job folder {top}") from exc
        files = None if config_only else _job_files(top)
        text = path.read_text(encoding="utf-8", errors="replace")
        check = check_config(text, config_path=config_path, files=files, config_only=config_only)
        for problem in check.problems:
            shown = (top / problem.file).as_posix() if problem.file else str(path)
            self.emit(
                file=shown, line=problem.line, code=problem.code, severity=problem.severity, message=problem.message
            )
        if config_only:
            for read in check.files_read:
                self.emit(
                    file=str(path) if read.file == config_path else (top / read.file).as_posix(),
                    line=read.line,
                    code="NAMD_READS",
                    severity="info",
                    message=f"reads {read.path} ({read.keyword})",
                )
        for action in check.cluster_actions:
            self.emit(
                file=str(path),
                line=action.line,
                code="NAMD_RUNS_ON_CLUSTER",
                severity="info",
                message=f"runs on the cluster: {action.text}",
            )
        return bool(check.errors)

    def emit(self, **fields: Any) -> None:
        self.stdout.write(json.dumps(fields, ensure_ascii=False))


def _job_files(top: Path) -> dict[str, Path | None]:
    files: dict[str, Path | None] = {}
    for found in top.rglob("*"):
        if found.is_file() and not found.is_symlink():
            files[found.relative_to(top).as_posix()] = found
            if len(files) >= MAX_JOB_FILES:
                break
    return files
