"""The job detail page: facts, the polled status panel, log tails, files and downloads, and the actions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from frontend.views.job_detail import duration_text
from jobs import services
from jobs.models import Job, JobEvent, JobProgress, JobState, StagedDownload
from jobs.namd_log import LogProgress
from templates_app.models import Template
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
RUNNING_LOG = b"""Info: TIMESTEP 2
Info: FIRST TIMESTEP 0
TCL: Running for 1000 steps
ETITLE:      TS    BOND    KINETIC    TOTAL    TEMP    POTENTIAL    PRESSURE    VOLUME
ENERGY:       0    1.0    10.0    -100.0    300.0    -110.0    1.0    27000.0
ENERGY:     500    1.1    10.5    -101.0    301.0    -111.5    0.5    27010.0
TIMING: 500  CPU: 1.0, 0.002/step  Wall: 1.0, 0.002/step, 0.5 hours remaining, 19.5 MB of memory in use.
PERFORMANCE: 500  averaging 86.4 ns/day, 0.002 sec/step with 1 CPUs
"""


def set_state(job: Job, state: JobState, **fields) -> Job:
    Job.objects.filter(pk=job.pk).update(state=state, **fields)
    return Job.objects.get(pk=job.pk)


def ran(job: Job, state: JobState = JobState.COMPLETED) -> Job:
    """The job as if it ran on SLURM and its results came back."""
    now = timezone.now()
    return set_state(
        job,
        state,
        slurm_job_id="4242",
        submitted_at=now - timedelta(minutes=9),
        started_at=now - timedelta(minutes=5),
        ended_at=now,
        finished_at=now,
    )


def log_progress(text: bytes) -> dict:
    log = LogProgress()
    log.feed(text)
    return log.to_state()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42, "42 s"), (600, "10 min"), (610, "10 min 10 s"), (3900, "1 h 5 min"), (183_659, "2 d 3 h")],
)
def test_durations_read_in_their_two_largest_units(seconds: int, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text


def test_the_page_shows_title_state_facts_config_and_script(member_client, member, profile) -> None:
    job = new_job(member, profile, title="Water box")
    response = member_client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<h1 id="job-title">Water box</h1>' in page
    assert '<span class="badge state-DRAFT">Draft</span>' in page
    assert "structure          water.psf" in page  # the rendered config, verbatim
    assert f"#SBATCH --job-name=np-{job.uuid.hex[:12]}-water-box" in page
    assert job.project_dir in page
    assert f'data-url="/api/v1/jobs/{job.pk}/energies?columns=TOTAL,POTENTIAL,KINETIC,TEMP,PRESSURE,VOLUME"' in page
    assert 'id="energy-plot"' in page
    assert 'data-active="true"' in page
    assert page.count('role="tab"') == 6
    # The page's Content-Security-Policy allows no inline script or style.
    assert "<script>" not in page
    assert ' style="' not in page
    assert " onclick=" not in page


def test_the_status_of_an_active_job_polls_and_a_terminal_ones_does_not(member_client, member, profile) -> None:
    job = set_state(new_job(member, profile), JobState.RUNNING, slurm_job_id="77", slurm_state="RUNNING")
    active = member_client.get(f"/jobs/{job.pk}/status/", **HTMX)
    assert active.status_code == 200
    assert f'hx-get="/jobs/{job.pk}/status/" hx-trigger="every 5s"' in active.content.decode()
    assert "HX-Trigger" not in active.headers
    # Ended in SLURM, but the results copy and the rest of the log are not in yet: the page keeps polling,
    # and the files and logs tabs wait for the job to settle to read themselves once more.
    set_state(job, JobState.FAILED, ended_at=timezone.now())
    ending = member_client.get(f"/jobs/{job.pk}/status/", **HTMX)
    assert f'hx-get="/jobs/{job.pk}/status/" hx-trigger="every 5s"' in ending.content.decode()
    assert "copying its results back" in ending.content.decode()
    assert "HX-Trigger" not in ending.headers
    whole = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-active="true"' in whole
    assert f'hx-get="/jobs/{job.pk}/files/" hx-trigger="job-terminal from:body"' in whole
    assert f'hx-get="/jobs/{job.pk}/log/namd/" hx-trigger="job-terminal from:body"' in whole
    ran(job, JobState.FAILED)
    Job.objects.filter(pk=job.pk).update(exit_code=1, slurm_state="FAILED")
    ended = member_client.get(f"/jobs/{job.pk}/status/", **HTMX)
    page = ended.content.decode()
    assert "hx-trigger" not in page
    assert ended.headers["HX-Trigger"] == "job-terminal"
    # The state line, facts and actions come along out of band, so the whole page shows the end.
    assert '<div id="job-state" class="job-state" hx-swap-oob="true">' in page
    assert '<span class="badge state-FAILED">Failed</span>' in page
    assert "exit code <code>1</code>" in page
    assert "Cancel job" not in page
    assert "Restart / continue" in page
    settled = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-active="false"' in settled
    assert "job-terminal from:body" not in settled


def test_progress_shows_the_step_speed_eta_and_a_stall(member_client, member, profile) -> None:
    job = set_state(new_job(member, profile), JobState.RUNNING, slurm_job_id="77")
    seen_at = timezone.now() - timedelta(minutes=1)
    JobProgress.objects.create(job=job, log_state=log_progress(RUNNING_LOG), last_timing_at=seen_at)
    page = member_client.get(f"/jobs/{job.pk}/status/", **HTMX).content.decode()
    assert '<progress id="job-progress" max="1000" value="500">' in page
    assert "Step 500 of 1000" in page
    assert "86.40 ns/day" in page
    eta = timezone.localtime(seen_at + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert "about 30 min (ETA <time" in page
    assert f">{eta}</time>" in page
    assert "may be stalled" not in page
    JobProgress.objects.filter(job=job).update(stalled_at=timezone.now())
    assert "NAMD may be stalled" in member_client.get(f"/jobs/{job.pk}/status/", **HTMX).content.decode()


def test_the_log_tabs_show_what_was_read_and_an_unknown_kind_is_404(member_client, member, profile) -> None:
    job = ran(new_job(member, profile))
    JobProgress.objects.create(job=job, log_tail="ENERGY: 10 the namd log", stderr_tail="srun: warning here")
    namd = member_client.get(f"/jobs/{job.pk}/log/namd/", **HTMX).content.decode()
    stdout = member_client.get(f"/jobs/{job.pk}/log/stdout/", **HTMX).content.decode()
    stderr = member_client.get(f"/jobs/{job.pk}/log/stderr/", **HTMX).content.decode()
    assert "ENERGY: 10 the namd log" in namd
    assert "<code>slurm-4242.out</code>" in namd
    assert "ENERGY: 10 the namd log" in stdout
    assert "same file as the NAMD log" in stdout
    assert "srun: warning here" in stderr
    assert "<code>slurm-4242.err</code>" in stderr
    assert "srun: warning here" not in namd
    assert member_client.get(f"/jobs/{job.pk}/log/journal/", **HTMX).status_code == 404
    assert member_client.post(f"/jobs/{job.pk}/log/journal/", **HTMX).status_code == 404


def test_a_log_refresh_asks_the_cluster_and_polls_until_the_tail_is_fetched(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = ran(new_job(member, profile), JobState.RUNNING)
    with django_capture_on_commit_callbacks() as enqueued:
        waiting = member_client.post(f"/jobs/{job.pk}/log/stderr/", **HTMX).content.decode()
    assert len(enqueued) == 1  # the fetch_logs task, sent once the request commits
    assert f'hx-get="/jobs/{job.pk}/log/stderr/?requested=' in waiting
    assert 'hx-trigger="every 2s"' in waiting
    requested = waiting.split("?requested=")[1].split('"')[0]
    still = member_client.get(f"/jobs/{job.pk}/log/stderr/?requested={requested}", **HTMX).content.decode()
    assert "Fetching from the cluster" in still
    JobProgress.objects.create(job=job, stderr_tail="fresh stderr", logs_fetched_at=timezone.now())
    done = member_client.get(f"/jobs/{job.pk}/log/stderr/?requested={requested}", **HTMX).content.decode()
    assert "fresh stderr" in done
    assert "every 2s" not in done  # no more polling; a running job's tail waits only for "job-terminal"
    assert 'hx-trigger="job-terminal from:body"' in done
    gave_up = member_client.get(f"/jobs/{job.pk}/log/stderr/?requested=1000.0", **HTMX).content.decode()
    assert "every 2s" not in gave_up  # a request older than the wait stops polling
    for bad in ("soon", "inf", "nan", str(time.time() + 3600)):  # bad or future: no endless polling
        response = member_client.get(f"/jobs/{job.pk}/log/stderr/?requested={bad}", **HTMX)
        assert "every 2s" not in response.content.decode(), bad


def test_a_log_refresh_of_a_job_never_submitted_sends_nothing(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = new_job(member, profile)
    with django_capture_on_commit_callbacks() as enqueued:
        page = member_client.post(f"/jobs/{job.pk}/log/namd/", **HTMX).content.decode()
    assert enqueued == []
    assert "has not been submitted" in page
    assert "hx-trigger" not in page


def test_the_files_tab_lists_the_project_and_a_refresh_lists_it_again(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = ran(new_job(member, profile))
    files = [
        {"path": "out.coor", "is_dir": False, "size_bytes": 2048, "modified": 1_700_000_000.0},
        {"path": "logs", "is_dir": True, "size_bytes": 4096, "modified": 1_700_000_000.0},
    ]
    JobProgress.objects.create(job=job, project_files=files, files_listed_at=timezone.now())
    page = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<th scope="row"><code>out.coor</code></th>' in page
    assert "2.0\xa0KB" in page
    assert '<input type="hidden" name="relpath" value="out.coor">' in page
    assert 'value="logs"' not in page  # a folder has no download button
    with django_capture_on_commit_callbacks() as enqueued:
        listing = member_client.post(f"/jobs/{job.pk}/files/", **HTMX).content.decode()
    assert len(enqueued) == 1
    assert f'hx-get="/jobs/{job.pk}/files/?requested=' in listing
    assert "Listing the folder" in listing


def test_a_download_is_staged_then_polled_until_its_link_is_ready(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = ran(new_job(member, profile))
    with django_capture_on_commit_callbacks() as enqueued:
        fetching = member_client.post(f"/jobs/{job.pk}/files/download/", {"relpath": "out/run.dcd"}, **HTMX)
    download = StagedDownload.objects.get(job=job)
    assert (download.relpath, download.state, download.requested_by) == ("out/run.dcd", "FETCHING", member)
    assert len(enqueued) == 1  # the fetch_download task
    status_url = f"/jobs/{job.pk}/downloads/{download.pk}/"
    assert f'hx-get="{status_url}" hx-trigger="every 1s"' in fetching.content.decode()
    StagedDownload.objects.filter(pk=download.pk).update(state="READY", size_bytes=3000, local_path="/nowhere")
    ready = member_client.get(status_url, **HTMX).content.decode()
    content_url = f"/api/v1/jobs/{job.pk}/downloads/{download.pk}/content"
    assert f'href="{content_url}" data-file="out/run.dcd"' in ready
    assert "hx-trigger" not in ready
    StagedDownload.objects.filter(pk=download.pk).update(
        state="FAILED", error_code="REMOTE_FILE_MISSING", error_message="That file is not in the folder."
    )
    failed = member_client.get(status_url, **HTMX).content.decode()
    assert "That file is not in the folder. (REMOTE_FILE_MISSING) Try again." in failed
    assert 'value="out/run.dcd"' in failed


def test_a_download_of_a_path_outside_the_folder_is_refused(member_client, member, profile) -> None:
    job = ran(new_job(member, profile))
    response = member_client.post(f"/jobs/{job.pk}/files/download/", {"relpath": "../../etc/passwd"}, **HTMX)
    assert response.status_code == 200
    assert "Give a path inside the job&#x27;s folder" in response.content.decode()
    assert not StagedDownload.objects.filter(job=job).exists()


def test_a_download_still_copying_after_15_minutes_stops_polling_and_offers_a_retry(member_client, member, profile):
    job = ran(new_job(member, profile))
    download = StagedDownload.objects.create(job=job, relpath="out.coor", requested_by=member)
    url = f"/jobs/{job.pk}/downloads/{download.pk}/"
    assert 'hx-trigger="every 1s"' in member_client.get(url, **HTMX).content.decode()
    StagedDownload.objects.filter(pk=download.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    fragment = member_client.get(url, **HTMX).content.decode()
    assert "hx-trigger" not in fragment
    assert "Still not copied after 15 minutes" in fragment
    assert 'aria-label="Download out.coor"' in fragment


def test_every_url_of_a_job_is_404_for_another_member_and_changes_nothing(client, member, other_member, profile):
    job = ran(new_job(member, profile))
    JobProgress.objects.create(job=job, log_tail="secret log", project_files=[])
    download = StagedDownload.objects.create(job=job, relpath="out.coor", requested_by=member)
    base = f"/jobs/{job.pk}"
    client.force_login(other_member)
    gets = [
        f"{base}/",
        f"{base}/status/",
        f"{base}/log/namd/",
        f"{base}/log/stderr/",
        f"{base}/files/",
        f"{base}/downloads/{download.pk}/",
    ]
    posts = [
        f"{base}/status/",
        f"{base}/log/namd/",
        f"{base}/files/",
        f"{base}/files/download/",
        f"{base}/cancel/",
        f"{base}/restart/",
        f"{base}/clone/",
        f"{base}/delete/",
    ]
    events, jobs = JobEvent.objects.count(), Job.objects.count()
    for url in gets:
        assert client.get(url).status_code == 404, url
        assert client.get(url, **HTMX).status_code == 404, url
    for url in posts:
        response = client.post(url, {"relpath": "out.coor", "submit": "1"})
        assert response.status_code == 404, url
        assert b"secret log" not in response.content
    job.refresh_from_db()
    assert (job.state, job.deleted_at, job.cancel_requested_at) == (JobState.COMPLETED, None, None)
    assert (JobEvent.objects.count(), Job.objects.count(), StagedDownload.objects.count()) == (events, jobs, 1)


def test_ask_slurm_now_requests_a_sync_of_the_jobs_group_and_shows_the_status(
    member_client, member, profile, monkeypatch
) -> None:
    job = set_state(new_job(member, profile), JobState.RUNNING, slurm_job_id="77", slurm_state="RUNNING")
    page = member_client.get(f"/jobs/{job.pk}/status/", **HTMX).content.decode()
    assert f'hx-post="/jobs/{job.pk}/status/"' in page
    asked = []  # the enqueue is the boundary faked here; the sync itself runs in the cluster tests
    monkeypatch.setattr(services, "request_member_refresh", lambda **kwargs: asked.append(kwargs) or [("task", False)])
    response = member_client.post(f"/jobs/{job.pk}/status/", **HTMX)
    assert response.status_code == 200
    assert asked == [{"user_id": member.pk, "job": job}]
    assert '<section id="job-status"' in response.content.decode()
    set_state(job, JobState.COMPLETED)
    assert (
        f'hx-post="/jobs/{job.pk}/status/"' not in member_client.get(f"/jobs/{job.pk}/status/", **HTMX).content.decode()
    )


def test_a_lab_admin_may_view_a_members_job(client, member, lab_admin, profile) -> None:
    job = new_job(member, profile, title="Alice's box")
    client.force_login(lab_admin)
    response = client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    assert "<dt>Owner</dt><dd>alice_t</dd>" in response.content.decode()


def test_clone_makes_a_new_draft_with_the_same_values_and_opens_its_inputs(member_client, member, profile) -> None:
    job = ran(new_job(member, profile, title="Water box", values={"temperature": 310.0}))
    response = member_client.post(f"/jobs/{job.pk}/clone/")
    copy = Job.objects.exclude(pk=job.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:wizard_inputs", kwargs={"job_id": copy.pk})
    assert (copy.state, copy.title, copy.owner, copy.parent) == (JobState.DRAFT, "Water box (copy)", member, None)
    assert copy.values == job.values
    assert copy.values["temperature"] == 310.0
    assert (copy.resources, copy.recipe_name, copy.profile_id) == (job.resources, job.recipe_name, job.profile_id)
    assert copy.template_version.template_id == job.template_version.template_id
    assert copy.uuid != job.uuid
    assert copy.project_dir != job.project_dir


def test_cancel_of_a_draft_cancels_it_and_says_so(member_client, member, profile) -> None:
    job = new_job(member, profile)
    response = member_client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert response.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert "The job is cancelled." in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    again = member_client.post(f"/jobs/{job.pk}/cancel/", follow=True).content.decode()
    assert "The job has already ended." in again  # the Conflict, as an error message on the page
    assert member_client.get(f"/jobs/{job.pk}/cancel/").status_code == 405


def test_delete_marks_the_job_deleted_and_goes_to_the_list(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = new_job(member, profile)
    with django_capture_on_commit_callbacks() as enqueued:
        response = member_client.post(f"/jobs/{job.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:job_list")
    assert Job.objects.get(pk=job.pk).deleted_at is not None
    assert len(enqueued) == 1  # the delete task removes its folders
    assert member_client.get(f"/jobs/{job.pk}/").status_code == 404


def test_restart_of_a_job_that_has_not_ended_is_refused_with_the_reason(member_client, member, profile) -> None:
    job = set_state(new_job(member, profile), JobState.RUNNING, slurm_job_id="77")
    page = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Restart / continue" not in page
    assert "Cancel job" in page
    response = member_client.post(f"/jobs/{job.pk}/restart/", {"submit": "1"}, follow=True)
    assert response.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert "Only a job that ran and whose results are back can be continued." in response.content.decode()
    assert Job.objects.count() == 1


def test_restart_of_an_ended_job_opens_the_continuation_linked_to_its_parent(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = ran(new_job(member, profile, title="Water box"))
    with django_capture_on_commit_callbacks() as enqueued:
        response = member_client.post(f"/jobs/{job.pk}/restart/", {"title": "Longer run"})
    child = Job.objects.get(parent=job)
    assert response["Location"] == f"/jobs/{child.pk}/"
    assert (child.title, child.state, child.submit_when_ready) == ("Longer run", JobState.DRAFT, False)
    assert len(enqueued) == 1  # the task copying the restart files
    child_page = member_client.get(f"/jobs/{child.pk}/").content.decode()
    assert f'<dt>Continues</dt><dd><a href="/jobs/{job.pk}/">Water box</a></dd>' in child_page
    assert f'<a href="/jobs/{child.pk}/">Longer run</a>' in member_client.get(f"/jobs/{job.pk}/").content.decode()


def test_a_finished_stage_of_a_family_offers_the_next_stage(
    member_client, member, profile, django_capture_on_commit_callbacks
) -> None:
    job = new_job(member, profile)
    step4 = job.template_version.template
    Template.objects.filter(pk=step4.pk).update(family="CHARMM-GUI Solution Builder", stage=1)
    step5 = Template.objects.get(slug="production-restart")
    Template.objects.filter(pk=step5.pk).update(family="CHARMM-GUI Solution Builder", stage=2)
    assert "Start the next stage" not in member_client.get(f"/jobs/{job.pk}/").content.decode()  # not finished
    Job.objects.filter(pk=job.pk).update(state=JobState.COMPLETED, slurm_job_id="42", finished_at=timezone.now())
    page = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Next stage: Production from a restart" in page
    assert f'name="template_id" value="{step5.pk}"' in page
    with django_capture_on_commit_callbacks() as copies:
        response = member_client.post(f"/jobs/{job.pk}/next-stage/", {"template_id": str(step5.pk), "submit": "1"})
    child = Job.objects.get(parent=job)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{child.pk}/"
    assert (child.template_version.template_id, child.submit_when_ready) == (step5.pk, True)
    assert len(copies) == 1  # the copy of the folder, on the cluster, by a task
