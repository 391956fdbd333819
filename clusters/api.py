"""API endpoints: the clusters a member may use, and the member's own credential for each."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from clusters import access, selectors, services
from clusters.models import ClusterCredential, ClusterProfile, RemoteCommandRecord
from clusters.schemas import CredentialIn, CredentialOut, ProfileOut, RemoteCommandOut
from portal.errors import InvalidInput

router = Router(tags=["clusters"])


@router.get("/clusters", response=list[ProfileOut])
def list_clusters(request: HttpRequest) -> list[ClusterProfile]:
    return list(access.usable_profiles(request.auth).prefetch_related("partitions", "launch_recipes"))


@router.get("/clusters/{int:profile_id}", response=ProfileOut)
def get_cluster(request: HttpRequest, profile_id: int) -> ClusterProfile:
    return access.access_profile(user=request.auth, profile_id=profile_id)


@router.get("/clusters/{int:profile_id}/credential", response=CredentialOut)
def get_credential(request: HttpRequest, profile_id: int) -> ClusterCredential:
    return access.access_own_credential(user=request.auth, profile_id=profile_id)


@router.put("/clusters/{int:profile_id}/credential", response={200: CredentialOut})
def put_credential(request: HttpRequest, profile_id: int, payload: CredentialIn) -> Status:
    profile = access.access_profile(user=request.auth, profile_id=profile_id)
    common = {"user": request.auth, "profile": profile, "remote_username": payload.remote_username}
    if payload.auth_kind == "key":
        if not payload.private_key:
            raise InvalidInput("Paste the private key.", code="KEY_FORMAT_INVALID")
        credential = services.save_key_credential(
            **common, private_key=payload.private_key, passphrase=payload.passphrase
        )
    elif payload.auth_kind == "password":
        credential = services.save_password_credential(**common, password=payload.password or "")
    else:
        credential = services.generate_key_credential(**common, passphrase=payload.passphrase)
    return Status(200, credential)


@router.delete("/clusters/{int:profile_id}/credential", response={204: None})
def delete_credential(request: HttpRequest, profile_id: int) -> Status:
    credential = access.access_own_credential(user=request.auth, profile_id=profile_id)
    services.delete_credential(credential=credential)
    return Status(204, None)


@router.post("/clusters/{int:profile_id}/credential/test", response={202: CredentialOut})
def test_credential(request: HttpRequest, profile_id: int) -> Status:
    """Queue a connection test; poll GET .../credential for last_test_ok and last_test_summary."""
    credential = access.access_own_credential(user=request.auth, profile_id=profile_id)
    services.request_connection_test(credential=credential, acting_user=request.auth)
    credential.refresh_from_db()
    return Status(202, credential)


@router.get("/activity", response=list[RemoteCommandOut])
def list_activity(request: HttpRequest, limit: int = Query(100, ge=1, le=500)) -> list[RemoteCommandRecord]:
    """The latest commands the portal ran on clusters in your name (newest first)."""
    return list(selectors.own_remote_commands(request.auth)[:limit])
