"""The demo lab: one lab admin and two lab members with known passwords (demo only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import User


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    is_lab_admin: bool


DEMO_ACCOUNTS = (
    DemoAccount("labadmin", "namd-admin-demo", is_lab_admin=True),
    DemoAccount("alice", "namd-alice-demo", is_lab_admin=False),
    DemoAccount("bob", "namd-bob-demo", is_lab_admin=False),
)


@transaction.atomic
def ensure_demo_accounts() -> list[tuple[DemoAccount, bool]]:
    """Create the demo accounts that are missing; existing ones are left as they are."""
    results = []
    for account in DEMO_ACCOUNTS:
        user, created = User.objects.get_or_create(
            username=account.username,
            defaults={
                "email": f"{account.username}@lab.example",
                "is_staff": account.is_lab_admin,
                "is_superuser": account.is_lab_admin,
            },
        )
        if created:
            user.set_password(account.password)
            user.save(update_fields=["password"])
        results.append((account, created))
    return results
