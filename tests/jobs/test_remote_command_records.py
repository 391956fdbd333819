"""Commands run for a job are recorded with the job; `commands_of_job` finds them, and old records by argv."""

from __future__ import annotations

import pytest

from clusters import gateway
from clusters.models import RemoteCommandRecord
from clusters.services import save_key_credential
from clusters.ssh import CommandResult, ConnectionSpec
from clusters.ssh.keys import generate_ed25519_key
from jobs.remote import member_session
from jobs.selectors import commands_of_job
from tests.jobs.unit_jobs import new_job, unit_profile

pytestmark = pytest.mark.django_db

SQUEUE_ROW = "42|RUNNING|None|2026-11-24T18:15:30|2026-11-24T18:16:30|0:31|vm\n"


class FakePool:
    """FakeTransport in the pool's shape: every command exits 0; squeue prints one running job."""

    def run(self, spec: ConnectionSpec, argv: list[str], **_options: object) -> CommandResult:
        return CommandResult(tuple(argv), 0, "", "", 0.01)

    def run_sequence(self, spec: ConnectionSpec, argvs: list[list[str]], **_options: object) -> list[CommandResult]:
        return [CommandResult(tuple(argv), 0, SQUEUE_ROW if argv[0] == "squeue" else "", "", 0.01) for argv in argvs]


@pytest.fixture
def job(member, monkeypatch: pytest.MonkeyPatch):
    profile = unit_profile()
    key = generate_ed25519_key(comment="test", passphrase=None)
    save_key_credential(
        user=member, profile=profile, remote_username="alice", private_key=key.private_key, passphrase=None
    )
    monkeypatch.setattr(gateway, "connection_pool", FakePool)
    return new_job(member, profile)


def test_a_command_run_through_the_jobs_session_is_recorded_with_the_job(job) -> None:
    member_session(job, acting_user_id=job.owner_id, task_id="task-7").run(["true"])

    (record,) = RemoteCommandRecord.objects.all()
    assert (record.argv, record.job_id, record.acting_user_id, record.task_id) == (
        ["true"],
        job.pk,
        job.owner_id,
        "task-7",
    )
    assert (record.user_id, record.profile_id) == (job.owner_id, job.profile_id)


def test_each_part_of_a_status_exec_is_recorded_with_the_job(job) -> None:
    statuses = member_session(job, acting_user_id=job.owner_id).slurm().statuses(["42"])

    assert statuses["42"].slurm_state.value == "RUNNING"
    records = RemoteCommandRecord.objects.order_by("pk")
    assert [(record.argv[0], record.job_id) for record in records] == [("squeue", job.pk), ("sacct", job.pk)]


def test_a_groups_batched_commands_are_recorded_for_no_one_job(job) -> None:
    member_session(job, acting_user_id=None, for_group=True).slurm().statuses(["42"])

    records = RemoteCommandRecord.objects.order_by("pk")
    assert [(record.argv[0], record.job_id, record.user_id) for record in records] == [
        ("squeue", None, job.owner_id),
        ("sacct", None, job.owner_id),
    ]


def test_commands_of_job_finds_its_records_and_old_ones_by_argv(job, member) -> None:
    other_job = new_job(member, job.profile, title="other")
    member_session(job, acting_user_id=member.pk).run(
        ["squeue", "--noheader", "--jobs=42,43"]
    )  # names neither job: found by its job
    member_session(other_job, acting_user_id=member.pk).run(["squeue", "--noheader", "--jobs=42,43"])
    old = RemoteCommandRecord.objects.create(
        user=member, profile=job.profile, argv=["mkdir", "-p", "--", job.project_dir], started_at=job.created_at
    )  # made before records had a job

    found = commands_of_job(RemoteCommandRecord.objects.all(), job)

    assert sorted(found.values_list("pk", flat=True)) == sorted(
        [*RemoteCommandRecord.objects.filter(job=job).values_list("pk", flat=True), old.pk]
    )
    assert RemoteCommandRecord.objects.filter(job=job).count() == 1
    assert found.filter(job=other_job).exists() is False
