"""`manage.py import_charmm_gui PATH [--family NAME] [--production-repeats N]`: a CHARMM-GUI NAMD download as
a template family and its protocol.

PATH is the download's folder or the archive CHARMM-GUI gave (.tgz, .tar.gz, .zip). Prints one line per
stage template (made, given a new version, or unchanged), then the protocol's stages. Refusals are printed
with their code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from portal.errors import PortalError
from templates_app.charmm_gui import family_protocol, import_charmm_gui
from templates_app.protocol_services import stages_text
from templates_app.protocols import MAX_STEPS


class Command(BaseCommand):
    help = "Import a CHARMM-GUI NAMD download (folder, .tgz or .zip) as one template per stage and their protocol."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the download's folder or its archive")
        parser.add_argument("--family", help="the template family (default: the builder, from the stage names)")
        parser.add_argument(
            "--production-repeats",
            type=int,
            choices=range(1, MAX_STEPS + 1),
            metavar=f"1..{MAX_STEPS}",
            help="how many times the protocol runs the last production stage (CHARMM-GUI's runner: 10); "
            "default: as the protocol had it, or 1",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = timezone.now()
        try:
            templates = import_charmm_gui(
                source=options["path"],
                user=None,
                family=options["family"],
                production_repeats=options["production_repeats"],
            )
        except PortalError as exc:
            raise CommandError(f"[{exc.code}] {exc.user_message}") from exc
        for template in templates:
            latest = template.versions.order_by("-number").first()
            what = "unchanged" if latest.created_at < started else ("new" if latest.number == 1 else "new version")
            self.stdout.write(f"{template.stage}. {template.name} [{template.slug}] v{latest.number} ({what})")
        protocol = family_protocol(templates[0].family)
        self.stdout.write(f"protocol '{protocol.name}' [{protocol.slug}]: {stages_text(protocol)}")
