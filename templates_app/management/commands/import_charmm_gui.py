"""`manage.py import_charmm_gui PATH [--family NAME]`: a CHARMM-GUI NAMD download as a template family.

PATH is the download's folder or the archive CHARMM-GUI gave (.tgz, .tar.gz, .zip). Prints one line per
stage template: made, given a new version, or unchanged. Refusals are printed with their code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from portal.errors import PortalError
from templates_app.charmm_gui import import_charmm_gui


class Command(BaseCommand):
    help = "Import a CHARMM-GUI NAMD download (folder, .tgz or .zip) as one template per stage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the download's folder or its archive")
        parser.add_argument("--family", help="the template family (default: the builder, from the stage names)")

    def handle(self, *args: Any, **options: Any) -> None:
        started = timezone.now()
        try:
            templates = import_charmm_gui(source=options["path"], user=None, family=options["family"])
        except PortalError as exc:
            raise CommandError(f"[{exc.code}] {exc.user_message}") from exc
        for template in templates:
            latest = template.versions.order_by("-number").first()
            what = "unchanged" if latest.created_at < started else ("new" if latest.number == 1 else "new version")
            self.stdout.write(f"{template.stage}. {template.name} [{template.slug}] v{latest.number} ({what})")
