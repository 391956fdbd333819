"""`manage.py create_api_token USERNAME --name NAME [--days N]`: issue an API token from the command line.

For an admin setting up a script or pipeline account on a server (and the compose test): the secret is
printed once, on stdout alone, and never stored in clear.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import create_api_token
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Issue an API token for USERNAME and print its secret (shown once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. the script that uses it")
        parser.add_argument("--days", type=int, default=None, help="days until it expires (default: never)")

    def handle(self, *args: object, **options: object) -> None:
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {options['username']!r}")
        try:
            issued = create_api_token(user=user, name=str(options["name"]), expires_in_days=options["days"])
        except PortalError as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        self.stdout.write(issued.secret)
