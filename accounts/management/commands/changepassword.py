"""Django's `changepassword`, which also revokes the user's API tokens (as every password change does)."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth.management.commands import changepassword

from accounts import services
from accounts.models import User


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str:
        message = super().handle(*args, **options)  # raises CommandError when nothing changed
        username = options["username"] or getpass.getuser()
        user = User.objects.using(options["database"]).get(username=username)
        count = services.revoke_all_api_tokens(user=user)
        self.stdout.write(f"Revoked {count} API token(s) of '{user}'.")
        return message
