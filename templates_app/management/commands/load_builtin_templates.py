"""`manage.py load_builtin_templates`: the three built-in NAMD templates and their protocol (idempotent)."""

from django.core.management.base import BaseCommand

from templates_app.builtin import BUILTIN_PROTOCOL_SLUG, load_builtin_templates
from templates_app.models import Protocol
from templates_app.protocol_services import stages_text


class Command(BaseCommand):
    help = "Create or update the built-in NAMD templates and the protocol made of them."

    def handle(self, *args: object, **options: object) -> None:
        for template in load_builtin_templates():
            self.stdout.write(f"template '{template.name}' v{template.versions.order_by('-number').first().number}")
        protocol = Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)
        self.stdout.write(f"protocol '{protocol.name}': {stages_text(protocol)}")
