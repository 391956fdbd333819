"""`manage.py rotate_credential_keys`: re-encrypt every stored secret under the newest key.

Run it after putting a new key first in PORTAL_CREDENTIAL_KEYS (keep the old ones after it until
this has run); then the old keys can be dropped.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from clusters.crypto import newest_key_id, rotate
from clusters.models import ClusterCredential


class Command(BaseCommand):
    help = "Re-encrypt cluster credentials under the newest PORTAL_CREDENTIAL_KEYS key."

    def handle(self, *args: object, **options: object) -> None:
        newest = newest_key_id()
        rotated = 0
        with transaction.atomic():
            for credential in ClusterCredential.objects.select_for_update().iterator():
                changed = []
                for field in ("secret", "passphrase"):
                    sealed = getattr(credential, field)
                    if sealed is not None and sealed.key_id != newest:
                        setattr(credential, field, rotate(sealed))
                        changed.append(field)
                if changed:
                    credential.save(update_fields=changed)
                    rotated += 1
        self.stdout.write(f"re-encrypted {rotated} credential(s) under key {newest}")
