"""The 3D view: what a browser is sent to show a 100k-atom system with 50 frames, how soon the first frame is
ready, and whether pages that do not open the viewer got heavier.

On the local cluster, with a Celery worker of its own: a member's job runs a ~100k-atom solvated system
(`bench.solvated_system`: 8 ubiquitins, water, ions) on the stand-in NAMD engine, writing a DCD frame every
100 steps (50 frames). Three comparisons, each against a baseline measured in the same run:

- `viewer_mb_100k_50`: bytes the browser receives to show the molecule and play its 50 frames: the view
  (JSON), the solute's PDB and 50 solute frames, gzip-encoded as the API sends them, and the viewer's static
  files (NGL, viewer.js, viewer.css, gzipped as whitenoise serves them); against what a member downloads today
  to look at it in VMD: the PSF, the PDB and the DCD (`viewer_vs_files`). With water and ions shown as well:
  `viewer_all_mb_100k_50`.
- `first_frame_s`: from the member's click (POST .../view) while the job runs to its first frame being ready
  on the portal (the structure fetched as the owner and read, the newest frames read from the DCD); against
  staging the same three files through the portal's downloads (POST .../downloads until READY), what the
  member needs before VMD shows anything (`first_frame_vs_downloads`).
- `static_kb_without_viewer`: the stylesheets and scripts linked by the dashboard, jobs list, wizard and a job
  page with the viewer closed (gzipped), against the same pages as they were before the viewer (its card and
  its loader taken out of the job page): `static_without_vs_before`. The viewer's own files load on open.

Runs as root with the local cluster up; removes its users, profile, jobs and remote folders. Prints a table,
then one JSON object as the last line.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.test import Client  # noqa: E402

from bench.local_bench import Bench, localcluster, start_worker, stop_worker, wait_until  # noqa: E402
from bench.pages import ASSET_RE  # noqa: E402
from bench.solvated_system import SystemFiles, write_system  # noqa: E402
from jobs.models import Job, JobState  # noqa: E402
from portal.celery import app as celery_app  # noqa: E402
from templates_app.models import Template  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
PARAMETERS = PROJECT_DIR / "tests" / "fixtures" / "namd" / "par_water.prm"
RECIPE = "CPU: namd2 under srun"
ATOMS, COPIES, FRAMES, DCD_EVERY = 100_900, 8, 50, 100
VIEWER_STATIC = ("vendor/ngl/ngl.js", "frontend/viewer.js", "frontend/viewer.css")
# What the viewer added to the job page: its card, and the loader that adds the viewer's script when it opens.
CARD_RE = re.compile(r'<section class="card" aria-labelledby="viewer-heading" id="viewer-card">.*?</section>', re.S)
LOADER_RE = re.compile(r'<script src="/static/frontend/viewer_loader\.js"[^>]*></script>')
MB = 2**20


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def received(client: Client, url: str) -> int:
    """Bytes of one answer as the browser receives it (gzip-encoded when the server encodes it)."""
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    body = response.content
    return len(body) if response.get("Content-Encoding") == "gzip" else gzip_size(body)


def create_job(bench: Bench, client: Client, system: SystemFiles) -> dict[str, Any]:
    values = {
        "structure": "system.psf",
        "coordinates": "system.pdb",
        "parameters": "par_water.prm",
        "cell_x": 110.0,
        "cell_y": 110.0,
        "cell_z": 110.0,
        "output_energies": 100,
        "restart_every": 1000,
        "dcd_every": DCD_EVERY,
        "minimize_steps": DCD_EVERY,
        "run_steps": DCD_EVERY * (FRAMES - 1),
        "output_name": "system",
    }
    created = client.post(
        "/api/v1/jobs",
        {
            "template_id": Template.objects.get(slug="npt-equilibration").pk,
            "cluster_id": bench.profile.pk,
            "recipe": RECIPE,
            "title": "bench viewer",
            "values": values,
            "resources": {"partition": "debug", "walltime_s": 900},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    job = created.json()
    member = bench.members[0]
    bench.remote_dirs[member.pk] += [job["project_dir"], job["scratch_dir"]]
    for path in (system.psf, system.pdb, PARAMETERS):
        with path.open("rb") as stream:
            response = client.post(f"/api/v1/jobs/{job['id']}/inputs", {"file": stream})
        assert response.status_code == 202, response.content
    return job


def view(client: Client, job_id: int) -> dict[str, Any]:
    return client.get(f"/api/v1/jobs/{job_id}/view").json()


def time_first_frame(client: Client, job_id: int) -> float:
    started = time.perf_counter()
    assert client.post(f"/api/v1/jobs/{job_id}/view").status_code == 202
    wait_until(lambda: view(client, job_id)["frames"], timeout_s=300, what="the first frame", every_s=0.05)
    return time.perf_counter() - started


def time_downloads(client: Client, job_id: int, paths: list[str]) -> float:
    """The member's path today: stage the structure, coordinates and trajectory, then fetch them."""
    started = time.perf_counter()
    ids = []
    for path in paths:
        answer = client.post(f"/api/v1/jobs/{job_id}/downloads", {"path": path}, content_type="application/json")
        assert answer.status_code == 202, answer.content
        ids.append(answer.json()["id"])

    def ready() -> bool:
        states = [client.get(f"/api/v1/jobs/{job_id}/downloads/{i}").json()["state"] for i in ids]
        assert "FAILED" not in states, states
        return all(state == "READY" for state in states)

    wait_until(ready, timeout_s=600, what="the downloads", every_s=0.05)
    for download_id in ids:
        b"".join(client.get(f"/api/v1/jobs/{job_id}/downloads/{download_id}/content").streaming_content)
    return time.perf_counter() - started


def view_bytes(client: Client, job_id: int, parts: tuple[str, ...]) -> int:
    answer = view(client, job_id)
    total = received(client, f"/api/v1/jobs/{job_id}/view")
    for part in parts:
        total += received(client, answer["parts"][part]["url"])
        for frame in answer["frames"]:
            url = answer["frame_url"].replace("{index}", str(frame["index"])).replace("{part}", part)
            total += received(client, url)
    return total + sum(gzip_size(Path(finders.find(name)).read_bytes()) for name in VIEWER_STATIC)


def static_kb(pages: list[str]) -> float:
    linked = sorted({path for page in pages for path in ASSET_RE.findall(page)})
    return sum(gzip_size(Path(finders.find(url.removeprefix("/static/"))).read_bytes()) for url in linked) / 1024


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)
    for name in ("clusters.ssh", "axes", "jobs"):
        logging.getLogger(name).setLevel(logging.WARNING)
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    bench = Bench(facts)
    with tempfile.TemporaryDirectory(prefix="np-bench-viewer-") as tmp:
        store = Path(tmp) / "file-store"
        store.mkdir()
        settings.FILE_STORE = store
        queue = f"bench-viewer-{uuid.uuid4().hex[:12]}"
        celery_app.conf.task_default_queue = queue
        system = write_system(Path(tmp), ATOMS, copies=COPIES)
        worker = None
        try:
            bench.set_up()
            worker = start_worker(queue, store)
            member = bench.members[0]
            client = Client(SERVER_NAME="localhost")
            client.force_login(member)
            job = create_job(bench, client, system)
            job_id = job["id"]
            wait_until(
                lambda: Job.objects.get(pk=job_id).state == JobState.READY, timeout_s=300, what="READY", every_s=0.2
            )
            assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202

            def running() -> bool:
                client.post(f"/api/v1/jobs/{job_id}/refresh")
                return Job.objects.get(pk=job_id).state == JobState.RUNNING

            wait_until(running, timeout_s=300, what="RUNNING", every_s=0.5)
            first_frame_s = time_first_frame(client, job_id)

            def finished() -> bool:
                client.post(f"/api/v1/jobs/{job_id}/refresh")
                return Job.objects.get(pk=job_id).finished_at is not None

            wait_until(finished, timeout_s=600, what="the job to finish", every_s=1.0)
            wait_until(
                lambda: len(view(client, job_id)["frames"]) == FRAMES, timeout_s=300, what="50 frames", every_s=0.5
            )
            final = Job.objects.get(pk=job_id)
            downloads_s = time_downloads(client, job_id, ["system.psf", "system.pdb", "system.dcd"])
            files_bytes = sum(
                int(bench.sessions[member.pk].run(["stat", "-c", "%s", "--", f"{final.project_dir}/{name}"]).stdout)
                for name in ("system.psf", "system.pdb", "system.dcd")
            )
            shown = view_bytes(client, job_id, ("solute",))
            shown_all = view_bytes(client, job_id, ("solute", "ions", "water"))
            answer = view(client, job_id)
            page = client.get(f"/jobs/{job_id}/").content.decode()
            pages = [client.get(path).content.decode() for path in ("/", "/jobs/", "/jobs/new/")]
            static_now = static_kb([*pages, page])
            static_before = static_kb([*pages, LOADER_RE.sub("", CARD_RE.sub("", page))])
            assert LOADER_RE.search(page), "the job page has no viewer loader"
            assert CARD_RE.search(page), "the job page has no viewer card"
        except Exception:
            log = store.parent / "worker.log"
            if log.exists():
                print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            if worker is not None:
                stop_worker(worker, queue)
            bench.tear_down()

    figures = {
        "atoms": answer["atom_count"],
        "solute_atoms": answer["parts"]["solute"]["atoms"],
        "frames": len(answer["frames"]),
        "viewer_mb_100k_50": round(shown / MB, 2),
        "viewer_all_mb_100k_50": round(shown_all / MB, 2),
        "files_mb": round(files_bytes / MB, 2),
        "viewer_vs_files": round(shown / files_bytes, 3),
        "first_frame_s": round(first_frame_s, 2),
        "downloads_s": round(downloads_s, 2),
        "first_frame_vs_downloads": round(first_frame_s / downloads_s, 3),
        "static_kb_without_viewer": round(static_now, 1),
        "static_kb_before": round(static_before, 1),
        "static_without_vs_before": round(static_now / static_before, 3),
    }
    print(
        f"A {answer['atom_count']:,}-atom system ({answer['parts']['solute']['atoms']:,} solute atoms), "
        f"{len(answer['frames'])} frames, on the local cluster"
    )
    width = 62
    print(f"{'what':<{width}} {'figure':>12}")
    rows = [
        ("bytes to show it and play its frames (solute, gzip)", f"{shown / MB:.2f} MB"),
        ("  the same with water and ions shown", f"{shown_all / MB:.2f} MB"),
        ("baseline: PSF + PDB + DCD downloaded for VMD", f"{files_bytes / MB:.2f} MB"),
        ("click to first frame ready on the portal (job running)", f"{first_frame_s:.2f} s"),
        ("baseline: stage the three files through downloads", f"{downloads_s:.2f} s"),
        ("static files of the pages, viewer closed (gzip)", f"{static_now:.1f} KB"),
        ("  the same pages before the viewer (no card, no loader)", f"{static_before:.1f} KB"),
    ]
    for what, figure in rows:
        print(f"{what:<{width}} {figure:>12}")
    print(
        f"ratios: viewer/files {figures['viewer_vs_files']}, first frame/downloads "
        f"{figures['first_frame_vs_downloads']}, static now/before {figures['static_without_vs_before']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
