"""The clusters page: every cluster a member may use (login node, pinned host key fingerprints, partitions)
and the member's own credential for it: add, replace, delete, test the connection.

Secrets go in and never come back out. Connection tests run in a Celery task; the page polls for the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from clusters import access, services, ssh
from clusters.models import ClusterCredential, ClusterProfile, Partition
from frontend.credential_forms import CREDENTIAL_FORMS, GENERATE, PASSWORD, UPLOAD, CredentialForm
from portal.errors import InvalidInput

# A test that has not answered by then is reported as lost (the task itself gives up after 120 s).
POLL_GIVE_UP_AFTER = timedelta(seconds=180)

SUCCESS_NEXT_STEP = "You can submit jobs to this cluster."
NEXT_STEPS = {
    "AUTH_FAILED": "Check the cluster username. For a key, make sure its public half is a line of "
    "~/.ssh/authorized_keys in your home on the cluster; for a password, replace it if it changed.",
    "KEY_PASSPHRASE_WRONG": "Replace the credential, giving the key's right passphrase.",
    "KEY_INVALID": "Replace the credential with a key the cluster accepts.",
    "HOST_KEY_MISMATCH": "Do not retry: ask a lab admin to compare and pin the cluster's host key.",
    "UNREACHABLE": "The cluster may be down or the network interrupted: try again in a few minutes.",
    "TIMEOUT": "The cluster answered too slowly: try again in a few minutes.",
    "SESSION_BUDGET_EXHAUSTED": "The cluster is busy with the lab's other work: try again in a minute.",
    "CLUSTER_DEGRADED": "The portal paused calls to this cluster after repeated failures: try again later.",
    "SLURM_TOOLS_MISSING": "Tell a lab admin: the cluster profile may need module lines that load SLURM.",
}
DEFAULT_NEXT_STEP = "Try again; if it keeps failing, tell a lab admin the code shown."


@dataclass(frozen=True)
class HostKey:
    key_type: str
    fingerprint: str | None  # None: the pinned line cannot be read


@dataclass(frozen=True)
class ConnectionStatus:
    """The connection test area of one credential: running (and polling), lost, never tested, or answered."""

    credential: ClusterCredential
    is_running: bool = False
    is_lost: bool = False
    poll_url: str = ""
    is_ok: bool | None = None  # None: never tested
    code: str = ""
    summary: str = ""
    next_step: str = ""


@dataclass(frozen=True)
class ClusterPanel:
    profile: ClusterProfile
    host_keys: list[HostKey]
    partitions: list[tuple[Partition, str]]  # each with its longest run as SLURM writes it, e.g. "1:00:00"
    credential: ClusterCredential | None
    status: ConnectionStatus | None
    forms: dict[str, CredentialForm]
    open_method: str = ""  # the form to show unfolded (the one with errors)
    notice: str = ""

    @property
    def upload_form(self) -> CredentialForm:
        return self.forms[UPLOAD]

    @property
    def generate_form(self) -> CredentialForm:
        return self.forms[GENERATE]

    @property
    def password_form(self) -> CredentialForm:
        return self.forms[PASSWORD]


def _host_keys(profile: ClusterProfile) -> list[HostKey]:
    keys = []
    for line in profile.pinned_host_key_lines:
        try:
            fingerprint: str | None = ssh.fingerprint_sha256(line)
        except ValueError:
            fingerprint = None
        keys.append(HostKey(key_type=line.split()[0], fingerprint=fingerprint))
    return keys


def _walltime_text(seconds: int | None) -> str:
    if seconds is None:
        return "no limit"
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _connection_status(credential: ClusterCredential, *, asked_at: datetime | None, now: datetime) -> ConnectionStatus:
    """With `asked_at` (a test was asked for then) only an answer recorded since counts; without it the
    recorded answer shows, unless a test is still pending (the services mark it "Testing…")."""
    if asked_at is None:
        is_pending = credential.last_test_ok is None and bool(credential.last_test_summary)
        asked_at = now
    else:
        answered_at = credential.last_tested_at
        is_pending = credential.last_test_ok is None or answered_at is None or answered_at < asked_at
    if is_pending and now - asked_at > POLL_GIVE_UP_AFTER:
        return ConnectionStatus(credential, is_lost=True)
    if is_pending:
        poll_url = reverse("frontend:credential_status", args=[credential.pk])
        return ConnectionStatus(
            credential, is_running=True, poll_url=f"{poll_url}?{urlencode({'since': asked_at.isoformat()})}"
        )
    if credential.last_test_ok is None:
        return ConnectionStatus(credential)
    # The task records "CODE: what happened" (clusters.services.check_credential_connection).
    code, _, summary = credential.last_test_summary.partition(": ")
    next_step = SUCCESS_NEXT_STEP if credential.last_test_ok else NEXT_STEPS.get(code, DEFAULT_NEXT_STEP)
    return ConnectionStatus(credential, is_ok=credential.last_test_ok, code=code, summary=summary, next_step=next_step)


def _panel(
    profile: ClusterProfile,
    credential: ClusterCredential | None,
    *,
    now: datetime,
    bound_form: CredentialForm | None = None,
    notice: str = "",
) -> ClusterPanel:
    initial = {"remote_username": credential.remote_username} if credential else {}
    forms = {method: form(initial=initial, profile_id=profile.pk) for method, form in CREDENTIAL_FORMS.items()}
    if bound_form is not None:
        forms[bound_form.method] = bound_form
    return ClusterPanel(
        profile=profile,
        host_keys=_host_keys(profile),
        partitions=[(partition, _walltime_text(partition.max_walltime_s)) for partition in profile.partitions.all()],
        credential=credential,
        status=_connection_status(credential, asked_at=None, now=now) if credential else None,
        forms=forms,
        open_method=bound_form.method if bound_form is not None else "",
        notice=notice,
    )


def _own_credential_for(user: User, profile: ClusterProfile) -> ClusterCredential | None:
    return access.visible_credentials(user).filter(user=user, profile=profile).select_related("profile").first()


def _clusters_url(profile: ClusterProfile) -> str:
    return f"{reverse('frontend:clusters')}#cluster-{profile.pk}"


def _page(request: HttpRequest, *, replaced: ClusterPanel | None = None, status: int = 200) -> HttpResponse:
    """The whole page; `replaced` stands in for its cluster's panel (a form shown again with its errors)."""
    now = timezone.now()  # before reading: a test answered after this moment is still seen by the poller
    own_credentials = access.visible_credentials(request.user).filter(user=request.user).select_related("profile")
    own = {credential.profile_id: credential for credential in own_credentials}
    panels = []
    for profile in access.usable_profiles(request.user).prefetch_related("partitions"):
        if replaced is not None and replaced.profile.pk == profile.pk:
            panels.append(replaced)
        else:
            panels.append(_panel(profile, own.get(profile.pk), now=now))
    return render(request, "frontend/clusters.html", {"panels": panels}, status=status)


@login_required
@require_GET
def cluster_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@sensitive_post_parameters("private_key", "passphrase", "password")
@login_required
@require_POST
def save_credential(request: HttpRequest, profile_id: int) -> HttpResponse:
    profile = access.access_profile(user=request.user, profile_id=profile_id)
    form_class = CREDENTIAL_FORMS.get(request.POST.get("method", ""))
    if form_class is None:
        raise InvalidInput(
            "Choose how to log in: a key to upload, a key to generate, or a password.", code="CREDENTIAL_METHOD_INVALID"
        )
    form = form_class(request.POST, request.FILES, profile_id=profile.pk)
    credential = None
    if form.is_valid():
        try:
            credential = form.save(user=request.user, profile=profile)
        except InvalidInput as exc:
            form.add_service_error(exc)
    if credential is None:
        panel = _panel(profile, _own_credential_for(request.user, profile), now=timezone.now(), bound_form=form)
        if request.htmx:  # htmx swaps only 2xx answers: the panel with its errors comes back as 200
            return render(request, "frontend/_cluster_panel.html", {"panel": panel})
        return _page(request, replaced=panel, status=422)
    notice = (
        "Your new key is ready: add its public key below to ~/.ssh/authorized_keys on the cluster, then test."
        if form.method == GENERATE
        else "Saved. Test the connection to check that the cluster accepts it."
    )
    return _done(request, profile, credential, notice)


def _done(
    request: HttpRequest, profile: ClusterProfile, credential: ClusterCredential | None, notice: str
) -> HttpResponse:
    """After a change: the cluster's panel with the notice (htmx), or back to the page with it as a message."""
    if not request.htmx:
        messages.success(request, f"{profile.name}: {notice}")
        return redirect(_clusters_url(profile))
    panel = _panel(profile, credential, now=timezone.now(), notice=notice)
    return render(request, "frontend/_cluster_panel.html", {"panel": panel})


@login_required
@require_POST
def delete_credential(request: HttpRequest, credential_id: int) -> HttpResponse:
    credential = access.access_own_credential_by_id(user=request.user, credential_id=credential_id)
    profile = credential.profile
    services.delete_credential(credential=credential)
    notice = "Your credential was deleted: the portal can no longer log in to this cluster for you."
    return _done(request, profile, None, notice)


@login_required
@require_POST
def test_connection(request: HttpRequest, credential_id: int) -> HttpResponse:
    credential = access.access_own_credential_by_id(user=request.user, credential_id=credential_id)
    requested_at = timezone.now()
    services.request_connection_test(credential=credential, acting_user=request.user)
    if not request.htmx:
        messages.info(request, f"{credential.profile.name}: testing the connection. Reload to see the result.")
        return redirect(_clusters_url(credential.profile))
    status = _connection_status(credential, asked_at=requested_at, now=requested_at)
    return render(request, "frontend/_credential_status.html", {"status": status})


@login_required
@require_GET
def connection_status(request: HttpRequest, credential_id: int) -> HttpResponse:
    """htmx: the test area, polling itself until the task answers for a test asked for at `since`."""
    credential = access.access_own_credential_by_id(user=request.user, credential_id=credential_id)
    try:
        asked_at = datetime.fromisoformat(request.GET.get("since", ""))
    except ValueError:
        asked_at = None
    if asked_at is None or timezone.is_naive(asked_at):
        raise InvalidInput("The poll lost its start time: reload the page.", code="SINCE_INVALID")
    status = _connection_status(credential, asked_at=asked_at, now=timezone.now())
    return render(request, "frontend/_credential_status.html", {"status": status})
