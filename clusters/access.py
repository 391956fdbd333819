"""The one permission rule for cluster profiles, credentials and the remote commands run in members' names."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, RemoteCommandRecord
from portal.errors import NotFound


def usable_profiles(user: User) -> QuerySet[ClusterProfile]:
    """The cluster profiles `user` may submit to: every active one; none for an inactive user."""
    if not user.is_active:
        return ClusterProfile.objects.none()
    return ClusterProfile.objects.filter(is_active=True)


def access_profile(*, user: User, profile_id: int) -> ClusterProfile:
    """Raises NotFound (CLUSTER_NOT_FOUND) for a missing, inactive or unusable profile."""
    profile = usable_profiles(user).filter(pk=profile_id).first()
    if profile is None:
        raise NotFound("No such cluster.", code="CLUSTER_NOT_FOUND")
    return profile


def visible_credentials(user: User) -> QuerySet[ClusterCredential]:
    """A member sees their own credentials; a lab admin sees every credential (never its secret)."""
    if not user.is_active:
        return ClusterCredential.objects.none()
    if user.is_lab_admin:
        return ClusterCredential.objects.all()
    return ClusterCredential.objects.filter(user=user)


def access_credential(*, user: User, credential_id: int, for_update: bool = False) -> ClusterCredential:
    """Raises NotFound (CREDENTIAL_NOT_FOUND) for a missing credential and for someone else's."""
    queryset = visible_credentials(user).select_related("profile", "user")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    credential = queryset.filter(pk=credential_id).first()
    if credential is None:
        raise NotFound("No such cluster credential.", code="CREDENTIAL_NOT_FOUND")
    return credential


def access_own_credential_by_id(*, user: User, credential_id: int) -> ClusterCredential:
    """The member's own credential, to act with: a lab admin may see others' but never tests or deletes them.

    Raises NotFound (CREDENTIAL_NOT_FOUND) for a missing credential and for anyone else's.
    """
    credential = access_credential(user=user, credential_id=credential_id)
    if credential.user_id != user.pk:
        raise NotFound("No such cluster credential.", code="CREDENTIAL_NOT_FOUND")
    return credential


def access_own_credential(*, user: User, profile_id: int) -> ClusterCredential:
    """The member's own credential for a usable profile. Raises NotFound (CLUSTER_/CREDENTIAL_NOT_FOUND)."""
    profile = access_profile(user=user, profile_id=profile_id)
    credential = visible_credentials(user).select_related("profile").filter(user=user, profile=profile).first()
    if credential is None:
        raise NotFound("You have no credential for this cluster yet.", code="CREDENTIAL_NOT_FOUND")
    return credential


def access_launch_recipe(*, profile: ClusterProfile, name: str) -> LaunchRecipe:
    """A launch recipe of a profile the caller already may use. Raises NotFound (RECIPE_NOT_FOUND)."""
    recipe = profile.launch_recipes.filter(name=name).first()
    if recipe is None:
        raise NotFound("This cluster has no such launch recipe.", code="RECIPE_NOT_FOUND")
    return recipe


def visible_remote_commands(user: User) -> QuerySet[RemoteCommandRecord]:
    """A member sees the commands run in their name; a lab admin every member's; an inactive user none."""
    if not user.is_active:
        return RemoteCommandRecord.objects.none()
    if user.is_lab_admin:
        return RemoteCommandRecord.objects.all()
    return RemoteCommandRecord.objects.filter(user=user)
