"""Job services, access, transitions, sync rules, job.json and the API, on real PostgreSQL (no cluster contact)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.slurm import JobStatus, PortalState, SlurmState, StatusSource
from jobs import file_store, services
from jobs.access import access_job, visible_jobs
from jobs.metadata import JobDocumentInvalid, job_json_bytes, parse_job_document
from jobs.models import InputFile, Job, JobEvent, JobProgress, JobState
from jobs.services import discovery, status_sync
from jobs.services.progress import feed_log
from jobs.transitions import transition
from portal.errors import Conflict, InvalidInput, NotFound, TemplateError
from templates_app.batch_script import Resources
from templates_app.models import Template
from tests.factories import JobFactory, SchedulableProfileFactory
from tests.jobs.unit_jobs import FIXTURES, RESOURCES, VALUES, new_job, unit_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile(db):
    return unit_profile()


def upload(user, job: Job, name: str, content: bytes | None = None) -> InputFile:
    data = content if content is not None else (FIXTURES / name).read_bytes()
    return services.receive_input_file(user=user, job_id=job.pk, name=name, chunks=[data])


# ------------------------------------------------------------------ create


def test_create_renders_config_and_script_into_a_draft_with_its_dirs(member, profile) -> None:
    job = new_job(member, profile, title="My water box!")
    assert job.state == JobState.DRAFT
    assert "structure          water.psf" in job.config_text
    assert f"#SBATCH --job-name=np-{job.uuid.hex[:12]}-my-water-box" in job.batch_script
    assert job.project_dir == f"/home/{member.username}/namd_projects/npt-equilibration-{job.uuid.hex[:8]}"
    assert job.scratch_dir == f"/scratch/{member.username}/npt-equilibration-{job.uuid.hex[:8]}"
    assert job.values["temperature"] == 300.0  # defaults filled in
    assert list(job.events.values_list("kind", "new_state")) == [("CREATED", "DRAFT")]


def test_create_refuses_bad_values_and_resources_with_their_codes(member, profile) -> None:
    with pytest.raises(TemplateError) as bad_value:
        new_job(member, profile, values={"temperature": 5000})
    assert bad_value.value.details["problems"][0]["field"] == "temperature"
    with pytest.raises(InvalidInput) as bad_resources:
        services.create_job(
            user=member,
            request=services.JobRequest(
                template_id=Template.objects.get(slug="npt-equilibration").pk,
                cluster_id=profile.pk,
                recipe="cpu",
                title="",
                values=VALUES,
                resources=Resources(**{**RESOURCES.__dict__, "walltime_s": 7200}),
            ),
        )
    assert bad_resources.value.code == "TIME_OVER_LIMIT"
    assert Job.objects.count() == 0


# ------------------------------------------------------------------ inputs


def test_inputs_are_checked_by_role_and_their_atom_counts_compared(member, profile) -> None:
    job = new_job(member, profile)
    psf = upload(member, job, "water.psf")
    assert (psf.role, psf.atom_count, psf.state) == ("structure", 3, InputFile.State.RECEIVED)
    job.refresh_from_db()
    assert job.state == JobState.UPLOADING
    not_pdb = upload(member, job, "water.pdb", b"REMARK nothing here\n")
    assert (not_pdb.state, not_pdb.problem_code) == (InputFile.State.INVALID, "PDB_INVALID")
    atoms = (FIXTURES / "water.pdb").read_text().splitlines()
    two_atoms = upload(member, job, "water.pdb", ("\n".join(atoms[:2]) + "\nEND\n").encode())
    assert (two_atoms.state, two_atoms.atom_count) == (InputFile.State.RECEIVED, 2)
    problems = {p["code"] for p in services.input_problems(job)}
    assert {"ATOM_COUNT_MISMATCH", "INPUT_MISSING", "INPUT_NOT_ON_CLUSTER"} <= problems
    binary = upload(member, job, "par_water.prm", b"\x00\x01binary")
    assert binary.problem_code == "NOT_TEXT"


def test_upload_paths_are_kept_in_the_job_folder_and_limits_enforced(member, profile) -> None:
    job = new_job(member, profile)
    assert upload(member, job, "toppar/my par+1.prm", b"* params\n").name == "toppar/my_par+1.prm"
    for escape in ("../../etc/water.psf", "/etc/water.psf", "toppar/../../x", "a//b"):
        with pytest.raises(InvalidInput) as outside:
            upload(member, job, escape, b"x")
        assert outside.value.code == "INPUT_PATH_INVALID"
    with pytest.raises(InvalidInput) as reserved:
        upload(member, job, "job.sbatch", b"#!/bin/sh\n")
    assert reserved.value.code == "FILENAME_RESERVED"
    with pytest.raises(InvalidInput) as too_big:
        upload(member, job, "big.prm", b"x" * 10_001)
    assert too_big.value.code == "FILE_TOO_LARGE"
    assert not list(file_store.upload_path(job.uuid, "x").parent.glob("*big.prm*"))  # nothing half-written kept


def test_submit_is_refused_until_the_inputs_are_on_the_cluster(member, profile) -> None:
    job = new_job(member, profile)
    with pytest.raises(Conflict) as refused:
        services.request_submit(user=member, job_id=job.pk)
    assert refused.value.code == "INPUTS_NOT_READY"
    assert {p["file"] for p in refused.value.details["problems"]} == {"water.psf", "water.pdb", "par_water.prm"}


def test_inputs_ready_submit_a_job_whose_flag_was_switched_on_meanwhile(member, profile) -> None:
    """The copy task holds a job loaded before the member asked for submit-when-ready: it still submits."""
    job = new_job(member, profile)
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        upload(member, job, name)
    InputFile.objects.filter(job=job).update(state=InputFile.State.UPLOADED)
    stale = Job.objects.get(pk=job.pk)
    assert (stale.state, stale.submit_when_ready) == (JobState.UPLOADING, False)
    services.set_submit_when_ready(user=member, job_id=job.pk, enabled=True)  # UPLOADING: nothing to submit yet
    assert Job.objects.get(pk=job.pk).state == JobState.UPLOADING
    services.refresh_readiness(stale)
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING
    assert list(job.events.values_list("new_state", flat=True).order_by("id"))[-2:] == ["READY", "SUBMITTING"]


def test_bulk_cancel_sends_one_scancel_task_per_cluster(
    member, other_member, profile, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from portal.celery import app as celery_app

    elsewhere = SchedulableProfileFactory(slug="unit-2")
    mine = [JobFactory(owner=member, profile=profile, running=True, title=f"mine {n}") for n in range(3)]
    mine_elsewhere = JobFactory(owner=member, profile=elsewhere, running=True, title="mine elsewhere")
    theirs = JobFactory(owner=other_member, profile=profile, running=True, title="theirs")
    draft = new_job(member, profile, title="draft")
    sent = []  # the broker is the boundary faked here; the cluster test runs the real scancel
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.bulk_action(
            user=member, job_ids=[job.pk for job in [*mine, mine_elsewhere, theirs, draft]], action="cancel"
        )
    assert set(result.done) == {job.pk for job in [*mine, mine_elsewhere, draft]}
    assert [(refusal.job_id, refusal.code) for refusal in result.refused] == [(theirs.pk, "JOB_NOT_FOUND")]
    assert sorted(sent) == sorted([([job.pk for job in mine], member.pk), ([mine_elsewhere.pk], member.pk)])
    assert Job.objects.get(pk=draft.pk).state == JobState.CANCELLED  # before submission: at once, no scancel


def test_a_lab_admins_bulk_cancel_acts_on_their_own_jobs_only(
    member, lab_admin, profile, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from portal.celery import app as celery_app

    own = JobFactory(owner=lab_admin, profile=profile, running=True, title="the admin's")
    members = JobFactory(owner=member, profile=profile, running=True, title="the member's")
    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.bulk_action(user=lab_admin, job_ids=[own.pk, members.pk], action="cancel")
    assert result.done == (own.pk,)
    assert [(refusal.job_id, refusal.code) for refusal in result.refused] == [(members.pk, "JOB_NOT_YOURS")]
    assert sent == [([own.pk], lab_admin.pk)]
    assert Job.objects.get(pk=members.pk).cancel_requested_at is None


def test_inputs_cannot_change_after_submission(member, profile) -> None:
    job = JobFactory(owner=member, profile=profile, submitted=True, slurm_job_id="12")
    with pytest.raises(Conflict) as refused:
        upload(member, job, "water.psf")
    assert refused.value.code == "JOB_NOT_EDITABLE"


# ------------------------------------------------------------------ access


@pytest.mark.parametrize(
    ("who", "sees"), [("owner", True), ("other", False), ("admin", True), ("inactive", False), ("missing", False)]
)
def test_one_rule_decides_who_sees_a_job(who, sees, member, other_member, lab_admin, inactive_member, profile):
    job = new_job(member, profile)
    user = {"owner": member, "other": other_member, "admin": lab_admin, "inactive": inactive_member, "missing": member}[
        who
    ]
    job_id = job.pk + 1000 if who == "missing" else job.pk
    assert visible_jobs(user).filter(pk=job_id).exists() is sees
    if sees:
        assert access_job(user=user, job_id=job_id).pk == job.pk
    else:
        with pytest.raises(NotFound) as hidden:
            access_job(user=user, job_id=job_id)
        assert hidden.value.code == "JOB_NOT_FOUND"


def test_a_deleted_job_is_gone_for_everyone(member, lab_admin, profile) -> None:
    job = new_job(member, profile)
    services.request_delete(user=member, job_id=job.pk)
    assert visible_jobs(member).count() == visible_jobs(lab_admin).count() == 0
    assert access_job(user=member, job_id=job.pk, include_deleted=True).pk == job.pk


# ------------------------------------------------------------------ transitions and the status sync rules


def test_a_transition_happens_once_and_writes_one_event(member, profile) -> None:
    job = new_job(member, profile)
    stale = Job.objects.get(pk=job.pk)
    assert transition(job, JobState.CANCELLED, source="user") is True
    assert transition(stale, JobState.UPLOADING, source="user") is False  # loaded as DRAFT: no longer true
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert JobEvent.objects.filter(job=job, kind="TRANSITION").count() == 1


def status(state: SlurmState, portal: PortalState, **fields) -> JobStatus:
    values = {
        "slurm_job_id": "42",
        "slurm_state": state,
        "state": portal,
        "state_verbatim": state.value,
        "reason": None,
        "exit_code": None,
        "exit_signal": None,
        "started_at": None,
        "ended_at": None,
        "elapsed_s": None,
        "node_list": None,
        "source": StatusSource.SQUEUE,
        **fields,
    }
    return JobStatus(**values)


def queued(member, profile) -> Job:
    return JobFactory(owner=member, profile=profile, submitted=True, slurm_job_id="42")


def test_sync_applies_slurm_states_and_keeps_the_verbatim_text(member, profile) -> None:
    job = queued(member, profile)
    now = timezone.now()
    started = datetime(2026, 11, 24, 10, 0, 0)
    running = status(SlurmState.RUNNING, PortalState.RUNNING, started_at=started)
    assert status_sync.apply_status(job, running, now) is True
    assert (job.state, job.started_at) == (JobState.RUNNING, timezone.make_aware(started))
    cancelled = status(SlurmState.CANCELLED, PortalState.CANCELLED, state_verbatim="CANCELLED by 1001", exit_code=0)
    assert status_sync.apply_status(job, cancelled, now) is True
    saved = Job.objects.get(pk=job.pk)
    assert (saved.state, saved.slurm_state, saved.exit_code) == ("CANCELLED", "CANCELLED by 1001", 0)
    assert saved.ended_at is not None
    assert list(saved.events.filter(kind="TRANSITION").values_list("new_state", flat=True)) == ["RUNNING", "CANCELLED"]


def test_an_unknown_slurm_state_never_moves_the_job(member, profile) -> None:
    job = queued(member, profile)
    unknown = status(SlurmState.UNKNOWN, PortalState.UNKNOWN, state_verbatim="FROBNICATED")
    assert status_sync.apply_status(job, unknown, timezone.now()) is False
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING
    assert Job.objects.get(pk=job.pk).slurm_state == "FROBNICATED"


def test_a_job_slurm_forgot_is_lost_only_after_the_grace_period(member, profile) -> None:
    job = queued(member, profile)
    now = timezone.now()
    assert status_sync.apply_status(job, None, now) is False
    assert status_sync.apply_status(job, None, now + status_sync.LOST_GRACE - timedelta(seconds=1)) is False
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING
    assert status_sync.apply_status(job, None, now + status_sync.LOST_GRACE) is True
    assert Job.objects.get(pk=job.pk).state == JobState.LOST


def test_a_log_without_new_timing_lines_is_flagged_stalled_then_resumed(member, profile) -> None:
    job = queued(member, profile)
    progress = JobProgress(job=job)
    timing = (
        "TIMING: {step}  CPU: 1.0, 0.01/step  Wall: 1.0, 0.01/step, 0.1 hours remaining, 10.0 MB of memory in use.\n"
    )
    start = timezone.now()
    assert feed_log(progress, timing.format(step=100), start, 30) == ""
    assert feed_log(progress, timing.format(step=200), start + timedelta(seconds=20), 30) == ""
    assert progress.timing_interval_s == 20
    assert feed_log(progress, "", start + timedelta(seconds=20 + 5 * 30), 30) == ""  # 5x the sync interval
    assert feed_log(progress, "", start + timedelta(seconds=20 + 5 * 30 + 1), 30) == "STALLED"
    assert progress.stalled_at is not None
    assert feed_log(progress, timing.format(step=300), start + timedelta(seconds=400), 30) == "RESUMED"
    assert progress.stalled_at is None


def test_due_groups_follow_the_profile_interval_and_recent_submissions(member, profile, monkeypatch) -> None:
    sent = []
    monkeypatch.setattr(status_sync, "request_group_sync", lambda **kw: (sent.append(kw), ("id", False))[1])
    job = queued(member, profile)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(last_synced_at=now - timedelta(seconds=5))
    assert status_sync.request_due_syncs(now) == 0  # submitted just now: fast cadence, but only 5 s ago
    Job.objects.filter(pk=job.pk).update(last_synced_at=now - timedelta(seconds=11))
    assert status_sync.request_due_syncs(now) == 1
    Job.objects.filter(pk=job.pk).update(submitted_at=now - timedelta(hours=1))
    assert status_sync.request_due_syncs(now) == 0  # an old job waits for the profile's 30 s
    Job.objects.filter(pk=job.pk).update(last_synced_at=now - timedelta(seconds=31))
    assert status_sync.request_due_syncs(now) == 1
    assert sent[-1] == {"owner_id": member.pk, "profile_id": profile.pk}


# ------------------------------------------------------------------ job.json


def test_job_json_round_trips_and_discovery_imports_only_unknown_jobs(member, profile) -> None:
    job = queued(member, profile)
    document = job_json_bytes(job).decode()
    found = parse_job_document(document)
    assert (found.uuid, found.slurm_job_id, found.state, found.template_slug) == (
        job.uuid,
        "42",
        JobState.PENDING,
        "npt-equilibration",
    )
    path = f"{job.project_dir}/job.json"
    assert discovery.import_job_document(member, profile, path, document).outcome == "known"
    Job.objects.filter(pk=job.pk).delete()
    assert discovery.import_job_document(member, profile, path, document).outcome == "imported"
    imported = Job.objects.get(uuid=job.uuid)
    assert (imported.state, imported.slurm_job_id, imported.owner) == (JobState.PENDING, "42", member)
    with pytest.raises(JobDocumentInvalid) as refused:
        discovery.import_job_document(member, profile, path, "{not json")
    assert refused.value.code == "JOB_JSON_MALFORMED"


# ------------------------------------------------------------------ the API


def test_every_job_endpoint_hides_another_members_job(member, other_member, profile) -> None:
    job = new_job(member, profile)
    api_client = Client()  # a script's session (CSRF is the browser's concern, tested in the pages)
    api_client.force_login(other_member)
    base = f"/api/v1/jobs/{job.pk}"
    calls = [
        ("get", base, None),
        ("get", f"{base}/inputs", None),
        ("get", f"{base}/events", None),
        ("get", f"{base}/progress", None),
        ("get", f"{base}/energies", None),
        ("get", f"{base}/logs", None),
        ("get", f"{base}/files", None),
        ("post", f"{base}/submit", None),
        ("post", f"{base}/cancel", None),
        ("post", f"{base}/restart", {}),
        ("post", f"{base}/refresh", None),
        ("post", f"{base}/logs/refresh", None),
        ("post", f"{base}/files/refresh", None),
        ("post", f"{base}/downloads", {"path": "out.coor"}),
        ("get", f"{base}/downloads/1", None),
        ("get", f"{base}/downloads/1/content", None),
        ("delete", base, None),
    ]
    for method, url, body in calls:
        send = getattr(api_client, method)
        response = send(url) if body is None else send(url, body, content_type="application/json")
        assert (url, response.status_code) == (url, 404)
        assert response.json()["error"]["code"] == "JOB_NOT_FOUND", url
    upload_response = api_client.post(f"{base}/inputs", {"file": SimpleUploadedFile("water.psf", b"PSF\n")})
    assert upload_response.status_code == 404
    assert api_client.get("/api/v1/jobs").json()["count"] == 0
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT
    assert Job.objects.get(pk=job.pk).deleted_at is None


def test_the_job_list_filters_and_costs_the_same_queries_for_10_or_100_jobs(member, profile, api_client) -> None:
    api_client.force_login(member)
    template = new_job(member, profile, title="first")
    rows = [
        Job(
            owner=member,
            profile=profile,
            template_version=template.template_version,
            title=f"run {n}",
            project_dir="/p",
            scratch_dir="/s",
            state=JobState.COMPLETED,
        )
        for n in range(9)
    ]
    Job.objects.bulk_create(rows)
    with CaptureQueriesContext(connection) as small:
        page = api_client.get("/api/v1/jobs?page_size=5").json()
    assert (page["count"], len(page["items"])) == (10, 5)
    more = [
        Job(
            owner=member,
            profile=profile,
            template_version=template.template_version,
            title=f"more {n}",
            project_dir="/p",
            scratch_dir="/s",
            state=JobState.COMPLETED,
        )
        for n in range(90)
    ]
    Job.objects.bulk_create(more)
    with CaptureQueriesContext(connection) as large:
        page = api_client.get("/api/v1/jobs?page_size=50").json()
    assert (page["count"], len(page["items"])) == (100, 50)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert api_client.get("/api/v1/jobs?state=DRAFT").json()["count"] == 1
    assert api_client.get("/api/v1/jobs?q=first").json()["items"][0]["id"] == template.pk
    assert api_client.get("/api/v1/jobs?template=vacuum-minimization").json()["count"] == 0
    assert api_client.get(f"/api/v1/jobs?cluster_id={profile.pk}&state=completed").json()["count"] == 99
