"""`manage.py seed_demo`: create the demo lab's accounts if missing, print the logins."""

from django.core.management.base import BaseCommand

from accounts.demo import ensure_demo_accounts


class Command(BaseCommand):
    help = "Create the demo admin and lab members (idempotent) and print their logins."

    def handle(self, *args: object, **options: object) -> None:
        for account, _created in ensure_demo_accounts():
            role = "lab admin" if account.is_lab_admin else "lab member"
            self.stdout.write(f"  {account.username:<10} {account.password:<18} {role}")
