"""The 3D view of a job: built by a task from the files NAMD reads, its trajectory frames kept in the portal's file
store, so that pages and the API serve the molecule without SSH.

`request_view` (the owner opens the view) orders `prepare_view`: it reads the job's config as NAMD does
(`jobs.viewer.sources`), takes the structure, coordinates, restraint and cell files from the portal's staged
copies or, once sent, from the job folder on the cluster (as the owner, each file bounded), and writes the
view's parts (`jobs.viewer.scene`, `jobs.viewer.frame_store`). Frames follow: while the job runs, the sync that
reads its log reads the newest frames too (`read_frames`, at most FRAMES_PER_SYNC a sync, newest first);
once its results are back in the project folder, `read_view_frames` (ordered with the finish, durable) reads
the rest, thinned to the job's bounds. Every step can be run again: a killed worker leaves files the next run
writes over or drops, and the frames list is read back from what is on disk.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters.gateway import MemberSession
from jobs import file_store, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import Job, JobView
from jobs.namd_files.dcd import DcdHeader, read_frame, read_header
from jobs.namd_files.errors import InputFileInvalid
from jobs.viewer import atoms as atom_files
from jobs.viewer import frame_store
from jobs.viewer.scene import PARTS, Cell, build_scene, part_pdb, restrained_indices
from jobs.viewer.sources import NoStructure, ViewSources, view_sources
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, InvalidInput, NotFound, PortalError
from portal.queues import cluster_queue
from templates_app.namd_config import check_config, last_extended_system_fields

logger = logging.getLogger(__name__)

FRAMES_PER_SYNC = 4  # a running job's newest frames read by one sync; the rest wait for the next
XSC_MAX_BYTES = 64 * 1024
RUN_MAX_BYTES = 32 * 2**20  # consecutive frames are read in one range of at most this much


def request_view(*, user: User, job_id: int, rebuild: bool = False) -> tuple[JobView, str]:
    """The job's view, ordering its preparation when it has none (or `rebuild`, or the last one failed).

    Raises NotFound, Forbidden (JOB_NOT_YOURS: it reads the owner's files as the owner), InvalidInput
    (VIEW_NO_CONFIG: a continuation whose config is not rendered yet)."""
    job = access_job_to_act(user=user, job_id=job_id)
    if not job.config_text:
        raise InvalidInput(
            "The job's config is not rendered yet: open the view once its restart files are copied.",
            code="VIEW_NO_CONFIG",
        )
    with transaction.atomic():
        view, created = JobView.objects.select_for_update().get_or_create(job=job)
        if not created and not rebuild and view.state != JobView.State.FAILED:
            return view, ""
        view.state, view.error_code, view.error_message = JobView.State.PREPARING, "", ""
        view.save(update_fields=["state", "error_code", "error_message", "updated_at"])
        task_id = enqueue_on_commit(
            "jobs.tasks.prepare_view_task", job.pk, user.pk, key=f"view:{job.pk}", queue=cluster_queue(job.profile_id)
        )
    return view, task_id


def prepare_view(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Build the view's parts from the files the config reads; then read the frames already written."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    view = JobView.objects.filter(job=job).first()
    if view is None:
        return
    session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
    inputs = frame_store.view_dir(job.uuid) / "inputs"
    try:
        check = check_config(job.config_text, config_path=job.config_path, config_only=True)
        sources = view_sources(check)
        fields, write_rest = _build_parts(session, job, sources, inputs)
    except NoStructure as exc:
        _failed(view, "VIEW_NO_STRUCTURE", str(exc))
        return
    except InputFileInvalid as exc:
        _failed(view, exc.code, str(exc))
        return
    except ClusterUnreachable:
        raise  # the task waits for the cluster
    except PortalError as exc:
        _failed(view, exc.code, exc.user_message)
        return
    finally:
        shutil.rmtree(inputs, ignore_errors=True)
    frame_store.drop_frames(job.uuid, frame_store.stored_frames(job.uuid))
    JobView.objects.filter(pk=view.pk).update(
        state=JobView.State.READY,
        prepared_at=timezone.now(),
        trajectory={},
        frames=[],
        frames_available=0,
        **fields,
    )
    # The first frame before anything else, then the other parts, then the frames left (a running job's
    # next ones wait for the sync): what the member sees first comes first.
    started = job.started_at is not None or job.finished_at is not None
    if started:
        read_frames(session, job, max_new=1)
    JobView.objects.filter(pk=view.pk).update(parts=write_rest())
    if started:
        read_frames(session, job, max_new=None if job.finished_at else FRAMES_PER_SYNC - 1)


def view_gave_up(*, job_id: int, error: PortalError) -> None:
    """The preparation's task gave up (the cluster never answered, or a bug): the view says why."""
    JobView.objects.filter(job_id=job_id).update(
        state=JobView.State.FAILED, error_code=error.code, error_message=error.user_message[:500]
    )


def _failed(view: JobView, code: str, message: str) -> None:
    JobView.objects.filter(pk=view.pk).update(state=JobView.State.FAILED, error_code=code, error_message=message[:500])


def _source_file(session: MemberSession, job: Job, path: str, target: Path, *, required: bool = True) -> Path | None:
    """A file of the job folder on the portal: its staged copy while it has one, else fetched from the cluster."""
    staged = job.inputs.filter(name=path).exclude(staged_path="").values_list("staged_path", flat=True).first()
    if staged and Path(staged).is_file():
        return Path(staged)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:  # the download's own size check says whether it is there: no round trip of its own
        session.download(f"{job.project_dir}/{path}", str(target), max_bytes=settings.VIEW_INPUT_MAX_BYTES)
    except NotFound:
        if not required:
            return None
        raise InvalidInput(f"{path} is not in the job folder on the cluster.", code="VIEW_INPUT_MISSING") from None
    return target


def _build_parts(
    session: MemberSession, job: Job, sources: ViewSources, inputs: Path
) -> tuple[dict[str, Any], Callable[[], dict[str, Any]]]:
    """The view's fields with the part it opens with written (the solute, or the first part a system has), and
    what writes the other parts (their PDBs are most of the work for a solvated system) and returns `parts`."""

    def local(path: str, *, required: bool = True) -> Path | None:
        return _source_file(session, job, path, inputs / file_store.flat_name(path), required=required)

    structure = local(sources.structure)
    if sources.kind == "psf":
        atoms = atom_files.psf_atoms(structure)
        coordinates = local(sources.coordinates)
        atoms.xyz = atom_files.pdb_coordinates(coordinates, len(atoms))
    elif sources.kind == "amber":
        atoms = atom_files.prmtop_atoms(structure)
        atoms.xyz = atom_files.inpcrd_coordinates(local(sources.coordinates), len(atoms))
    else:
        atoms = atom_files.gro_atoms(structure)
    if sources.restart_coordinates:
        restart = local(sources.restart_coordinates, required=False)
        if restart is not None:
            atoms.xyz = atom_files.binary_coordinates(restart, len(atoms))
    scene = build_scene(atoms, settings.VIEW_MAX_ATOMS)
    parts = {part: {"atoms": size, "bytes": 0, "ready": not size} for part, size in scene.part_sizes.items()}

    def write(names: list[str]) -> dict[str, Any]:
        for part in names:
            data = part_pdb(atoms, scene, part)
            parts[part] = {**parts[part], "bytes": frame_store.write_part(job.uuid, part, data), "ready": True}
        return {part: dict(facts) for part, facts in parts.items()}

    shown = [part for part in PARTS if scene.part_sizes[part]]
    first = write(shown[:1])
    frame_store.write_order(job.uuid, scene.order)
    restrained: dict[str, list[int]] = {}
    label = ""
    if sources.restraint_file:
        marks = local(sources.restraint_file, required=False)
        if marks is not None:
            column = atom_files.pdb_column(marks, sources.restraint_column, len(atoms))
            restrained = restrained_indices(scene, [value != 0.0 for value in column])
            label = sources.restraint_label
    cell = sources.cell
    if sources.extended_system:
        xsc = local(sources.extended_system, required=False)
        if xsc is not None and xsc.stat().st_size <= XSC_MAX_BYTES:
            cell = xsc_cell(xsc.read_text(errors="replace")) or cell
    fields = {
        "atom_count": len(atoms),
        "parts": first,
        "note": scene.note,
        "cell": cell.as_json() if cell else None,
        "restrained": restrained,
        "restraint_label": label[:200],
        "trajectory_path": sources.trajectory,
        "error_code": "",
        "error_message": "",
    }
    return fields, lambda: write(shown[1:])


def xsc_cell(text: str) -> Cell | None:
    """The cell of an extended-system file's last line: `step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z`."""
    try:
        numbers = [float(word) for word in last_extended_system_fields(text)[1:13]]
    except ValueError:
        return None
    if len(numbers) < 12 or not all(math.isfinite(number) for number in numbers):
        return None
    vectors = tuple(tuple(numbers[i : i + 3]) for i in (0, 3, 6))
    return Cell(vectors, tuple(numbers[9:12]))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ frames


def read_frames(session: MemberSession, job: Job, *, max_new: int | None, view: JobView | None = None) -> None:
    """Bring the view's frames up to date with the job's trajectory: read the header once, keep `kept_frames` of
    what is written (newest first, at most `max_new`), drop the others. Errors are left on the view, not raised,
    except the cluster's being unreachable. `view`: the job's ready view, when the caller has it."""
    view = view or JobView.objects.filter(job=job, state=JobView.State.READY).first()
    if view is None or not view.trajectory_path:
        return
    # Where it runs, until the results are back in the project folder (if the copy failed, still in scratch).
    folders = [job.project_dir, job.scratch_dir] if job.finished_at else [job.scratch_dir]
    try:
        for folder in folders:
            if _read_frames(session, job, view, f"{folder}/{view.trajectory_path}", max_new):
                break
    except ClusterUnreachable:
        raise
    except (PortalError, InputFileInvalid) as exc:
        code = exc.code
        message = exc.user_message if isinstance(exc, PortalError) else str(exc)
        logger.warning("view_frames_failed", extra={"job_id": job.pk, "code": code})
        JobView.objects.filter(pk=view.pk).update(error_code=code, error_message=message[:500])


def _read_frames(session: MemberSession, job: Job, view: JobView, path: str, max_new: int | None) -> bool:
    """False when the trajectory is not there (not written yet)."""
    facts = remote.parse_file_facts(session.run(remote.file_facts_argv(path)).stdout)
    if facts is None or not facts.is_regular:
        return False
    header = DcdHeader(**view.trajectory) if view.trajectory else None
    if header is None:
        (start,) = session.read_ranges(path, [(0, min(facts.size_bytes, 4096))])
        header = read_header(start)
        if header.atoms != view.atom_count:
            raise InputFileInvalid(
                "VIEW_TRAJECTORY_MISMATCH",
                f"{view.trajectory_path} has {header.atoms} atoms a frame but the structure has {view.atom_count}.",
            )
    available = header.frames_in(facts.size_bytes)
    order = frame_store.read_order(job.uuid)
    stored = frame_store.stored_frames(job.uuid)
    if available < view.frames_available:  # the trajectory was started again
        frame_store.drop_frames(job.uuid, stored)
        stored = set()
    bytes_a_frame = 12 * len(order) + frame_store.CELL_BYTES
    cap = max(1, min(settings.VIEW_MAX_FRAMES, settings.VIEW_MAX_BYTES // bytes_a_frame))
    kept = frame_store.kept_frames(available, max_frames=cap)
    missing = [index for index in reversed(kept) if index not in stored][:max_new]
    runs = _runs(sorted(missing), max_frames=max(1, RUN_MAX_BYTES // header.frame_bytes))
    ranges = [(header.frame_offset(run[0]), header.frame_bytes * len(run)) for run in runs]
    cells = {frame["index"]: frame["cell"] for frame in view.frames}
    for run, data in zip(runs, session.read_ranges(path, ranges) if ranges else [], strict=True):
        for position, index in enumerate(run):
            part = data[position * header.frame_bytes : (position + 1) * header.frame_bytes]
            frame = read_frame(header, part, header.step_of(index))
            frame_store.store_frame(job.uuid, index, frame.cell, frame_store.view_coordinates(frame, order))
            cells[index] = [round(value, 4) for value in frame.cell] if frame.cell else None
    frame_store.drop_frames(job.uuid, stored - set(kept))
    on_disk = sorted(frame_store.stored_frames(job.uuid) & set(kept))
    frames = [
        {
            "index": index,
            "step": header.step_of(index),
            "cell": cells[index] if index in cells else frame_store.frame_cell(job.uuid, index),
        }
        for index in on_disk
    ]
    JobView.objects.filter(pk=view.pk).update(
        trajectory=dataclasses.asdict(header),
        frames=frames,
        frames_available=available,
        frames_read_at=timezone.now(),
        error_code="",
        error_message="",
    )
    return True


def _runs(indices: list[int], *, max_frames: int) -> list[list[int]]:
    """Ascending frame indices in runs of consecutive ones (at most `max_frames` a run): one read each."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1 and len(runs[-1]) < max_frames:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def read_view_frames(*, job_id: int, task_id: str = "") -> None:
    """After the job's results are back: its view's frames from the project folder (the finish's follow-up)."""
    job = Job.objects.select_related("owner", "profile").filter(pk=job_id).first()
    if job is None or not JobView.objects.filter(job=job, state=JobView.State.READY).exists():
        return
    session = remote.member_session(job, acting_user_id=None, task_id=task_id)
    read_frames(session, job, max_new=None)


def order_frames_after_finish(job: Job) -> None:
    """In the finish's transaction: the view's frames are read once the results are in the project folder."""
    if JobView.objects.filter(job=job, state=JobView.State.READY).exclude(trajectory_path="").exists():
        enqueue_on_commit(
            "jobs.tasks.read_view_frames_task", job.pk, key=f"view-frames:{job.pk}", queue=cluster_queue(job.profile_id)
        )


def frames_for_sync(session: MemberSession, jobs: list[Job]) -> None:
    """The sync's part: the newest frames of the running jobs whose view is open."""
    views = {
        view.job_id: view
        for view in JobView.objects.filter(job__in=jobs, state=JobView.State.READY).exclude(trajectory_path="")
    }
    try:
        for job in jobs:
            if job.pk in views:
                read_frames(session, job, max_new=FRAMES_PER_SYNC, view=views[job.pk])
    except ClusterUnreachable as exc:  # the next sync reads them; the states it read are kept
        logger.warning("view_frames_failed", extra={"code": exc.code})
