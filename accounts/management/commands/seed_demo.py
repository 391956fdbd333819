"""`manage.py seed_demo`: create the demo lab's accounts if missing, print the logins. Development only."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import ensure_demo_accounts


class Command(BaseCommand):
    help = "Create the demo admin and lab members (idempotent) and print their logins. Development only."

    def handle(self, *args: object, **options: object) -> None:
        if settings.ENVIRONMENT != "development":
            raise CommandError(
                "seed_demo creates a superuser with a published password, so it runs only with "
                f"PORTAL_ENVIRONMENT=development (this is {settings.ENVIRONMENT}). Create real accounts with "
                "`manage.py createsuperuser`."
            )
        for account, _created in ensure_demo_accounts():
            role = "lab admin" if account.is_lab_admin else "lab member"
            self.stdout.write(f"  {account.username:<10} {account.password:<18} {role}")
