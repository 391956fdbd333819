"""User-scoped reads on clusters: remote commands (the activity), credentials' connection state, usernames."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from clusters.access import usable_profiles, visible_credentials, visible_remote_commands
from clusters.models import ClusterCredential, ClusterProfile, RemoteCommandRecord


def own_remote_commands(user: User) -> QuerySet[RemoteCommandRecord]:
    """What the portal ran on clusters in `user`'s name, newest first."""
    return RemoteCommandRecord.objects.filter(user=user).select_related("profile").order_by("-started_at")


def remote_command_list(
    user: User, *, profile_id: int | None = None, user_id: int | None = None
) -> QuerySet[RemoteCommandRecord]:
    """The commands `user` may see, newest first, optionally on one cluster and in one member's name."""
    commands = visible_remote_commands(user).select_related("profile", "user")
    if profile_id is not None:
        commands = commands.filter(profile_id=profile_id)
    if user_id is not None:
        commands = commands.filter(user_id=user_id)
    return commands.order_by("-started_at", "-id")


def users_with_commands(user: User) -> QuerySet[User]:
    """The members in whose name the portal ran commands that `user` may see (a filter's choices)."""
    return User.objects.filter(pk__in=visible_remote_commands(user).values("user_id")).order_by("username")


@dataclass(frozen=True)
class ConnectionState:
    """A usable cluster and the member's own credential for it (None: not added yet)."""

    profile: ClusterProfile
    credential: ClusterCredential | None


def own_connection_states(user: User) -> list[ConnectionState]:
    """Each cluster `user` may use with their own credential's last test (two queries, never a secret)."""
    own = (
        visible_credentials(user)
        .filter(user=user)
        .only("id", "profile_id", "remote_username", "last_tested_at", "last_test_ok", "last_test_summary")
    )
    profiles = usable_profiles(user).prefetch_related(Prefetch("credentials", queryset=own, to_attr="own_credentials"))
    return [ConnectionState(profile, next(iter(profile.own_credentials), None)) for profile in profiles]


def remote_username(*, user: User, profile: ClusterProfile) -> str:
    """The member's login on the cluster: from their credential, else their portal username."""
    credential = ClusterCredential.objects.filter(user=user, profile=profile).only("remote_username").first()
    return credential.remote_username if credential else user.username
