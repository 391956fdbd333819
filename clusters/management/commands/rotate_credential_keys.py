"""`manage.py rotate_credential_keys`: re-encrypt every stored secret under the newest key.

Run it after putting a new key first in PORTAL_CREDENTIAL_KEYS (keep the old ones after it until
this has run); then the old keys can be dropped. Every model's `EncryptedSecretField`s are covered
(cluster credentials, notification webhook URLs, any added later), found through the app registry.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction

from clusters.crypto import EncryptedSecretField, newest_key_id, rotate


def secret_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Each model that stores secrets, with the names of its encrypted fields."""
    found = []
    for model in apps.get_models():
        names = [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedSecretField)]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (cluster credentials, webhook URLs) under the newest key."

    def handle(self, *args: object, **options: object) -> None:
        newest = newest_key_id()
        rotated = 0
        with transaction.atomic():
            for model, names in secret_fields():
                for row in model.objects.select_for_update().iterator():
                    changed = []
                    for name in names:
                        sealed = getattr(row, name)
                        if sealed is not None and sealed.key_id != newest:
                            setattr(row, name, rotate(sealed))
                            changed.append(name)
                    if changed:
                        row.save(update_fields=changed)
                        rotated += 1
        self.stdout.write(f"re-encrypted {rotated} row(s) of secrets under key {newest}")
