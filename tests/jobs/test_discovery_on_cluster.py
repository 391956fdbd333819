"""Discovery on the real local cluster: job.json files in a member's project root, good and tampered with.

The member's project root is their own (a cluster user only this test uses), so every document found is
one the test wrote. A refused document is reported with its code, imports nothing, and the member's next
discovery and status sync run as before.
"""

from __future__ import annotations

import json

import pytest

from jobs import remote
from jobs.metadata import job_json_bytes
from jobs.models import Job, JobState
from jobs.services import discover_jobs, sync_member_jobs
from tests.factories import JobFactory
from tests.jobs.cluster_jobs import RECIPE, register

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

MEMBER = "np_ci_discovery"


def write_document(session, job: Job, text: str) -> None:
    remote.make_dirs(session, job.project_dir)
    session.write_files(job.project_dir, {"job.json": text.encode()})


def test_discovery_imports_the_intact_document_and_reports_the_tampered_ones() -> None:
    setup = register((MEMBER,))
    member, profile = setup.members[0], setup.profile
    session = setup.session(member)
    jobs = [JobFactory(owner=member, profile=profile, recipe_name=RECIPE, submitted=True) for _ in range(3)]
    intact, digits, broken = jobs
    for root in session.roots:  # nothing of an earlier run
        session.run(["find", root, "-mindepth", "1", "-delete"], check=True)
    write_document(session, intact, job_json_bytes(intact).decode())
    tampered = {**json.loads(job_json_bytes(digits)), "slurm_job_id": "\u0664\u0662"}  # Arabic-Indic 42
    write_document(session, digits, json.dumps(tampered))
    write_document(session, broken, job_json_bytes(broken).decode()[:200])  # cut in half
    Job.objects.all().delete()

    first = discover_jobs(user_id=member.pk, profile_id=profile.pk)

    assert {key: first[key] for key in ("found", "imported", "known", "refused")} == {
        "found": 3,
        "imported": 1,
        "known": 0,
        "refused": 2,
    }
    assert sorted((refusal["path"], refusal["code"]) for refusal in first["refusals"]) == sorted(
        [
            (f"{digits.project_dir}/job.json", "JOB_JSON_FIELD_INVALID"),
            (f"{broken.project_dir}/job.json", "JOB_JSON_MALFORMED"),
        ]
    )
    assert list(Job.objects.values_list("uuid", "state")) == [(intact.uuid, JobState.PENDING)]

    again = discover_jobs(user_id=member.pk, profile_id=profile.pk)
    report = sync_member_jobs(owner_id=member.pk, profile_id=profile.pk)

    assert (again["imported"], again["known"], again["refused"]) == (0, 1, 2)
    assert (report.jobs, report.coalesced) == (1, False)
