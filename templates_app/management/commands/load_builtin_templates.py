"""`manage.py load_builtin_templates`: the three built-in NAMD templates (idempotent)."""

from django.core.management.base import BaseCommand

from templates_app.builtin import load_builtin_templates


class Command(BaseCommand):
    help = "Create or update the built-in NAMD templates."

    def handle(self, *args: object, **options: object) -> None:
        for template in load_builtin_templates():
            self.stdout.write(f"template '{template.name}' v{template.versions.order_by('-number').first().number}")
