"""User-scoped reads on clusters."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from clusters.models import ClusterCredential, ClusterProfile, RemoteCommandRecord


def own_remote_commands(user: User) -> QuerySet[RemoteCommandRecord]:
    """What the portal ran on clusters in `user`'s name, newest first."""
    return RemoteCommandRecord.objects.filter(user=user).select_related("profile").order_by("-started_at")


def remote_username(*, user: User, profile: ClusterProfile) -> str:
    """The member's login on the cluster: from their credential, else their portal username."""
    credential = ClusterCredential.objects.filter(user=user, profile=profile).only("remote_username").first()
    return credential.remote_username if credential else user.username
