"""A job's side of the cluster: its member session, its folders, and the argv of every tool other than
SLURM that the portal runs on them (head, cp, od, stat, rm, find, dd, tail, rsync, sha256sum, mkdir).

Builds argv lists only from paths the portal made (a root plus names it chose) and validated SLURM
ids; never from request text. The one place that turns a Job into a `MemberSession`.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from clusters import ssh
from clusters.gateway import MemberSession, portal_error
from clusters.models import ClusterCredential
from jobs import layout
from jobs.metadata import job_json_bytes
from jobs.models import Job
from portal.errors import NotFound, PortalError

logger = logging.getLogger(__name__)

LOG_TAIL_BYTES = 64 * 1024
# %y type, %P path below the dir, %s size, %T@ mtime: one tab-separated line per entry.
LISTING_FORMAT = "%y\t%P\t%s\t%T@\n"
LISTING_MAX_DEPTH = 4  # a CHARMM-GUI job keeps files in namd/toppar/
# The output cap of one listing: ≈ 200,000 entries of ≈ 80 bytes; a folder with more is refused, not read.
LISTING_MAX_BYTES = 16 * 1024 * 1024
SCRIPT_SUFFIX = ".sbatch"


def member_session(
    job: Job, *, acting_user_id: int | None, task_id: str = "", for_group: bool = False
) -> MemberSession:
    """The session of the job's OWNER (every cluster action runs with the owner's credential); its commands are
    recorded as the job's, unless it acts `for_group` (the sync or a scancel of many of the owner's jobs), and
    with who asked: `acting_user_id` (None only for the portal's own schedule: the status sync and finishing).

    Raises NotFound (CREDENTIAL_NOT_FOUND) when the owner has no credential for the job's cluster.
    """
    credential = (
        ClusterCredential.objects.select_related("profile")
        .filter(user_id=job.owner_id, profile_id=job.profile_id)
        .first()
    )
    if credential is None:
        raise NotFound("The job's owner has no credential for this cluster.", code="CREDENTIAL_NOT_FOUND")
    return MemberSession(
        credential, task_id=task_id, job_id=None if for_group else job.pk, acting_user_id=acting_user_id
    )


def credential_session(credential: ClusterCredential, *, task_id: str = "") -> MemberSession:
    """The session of a member's own credential, for work on no one job (discovery of their job folders), asked
    by that member."""
    return MemberSession(credential, task_id=task_id, acting_user_id=credential.user_id)


# A sequence part's own markers and a missing file's complaint, on top of the bytes it reads.
SMALL_READ_OVERHEAD_BYTES = 4096


def read_small_files_argvs(paths: Iterable[str], max_bytes: int) -> list[list[str]]:
    """One `head -c` of max_bytes + 1 per file, for `run_sequence`: a file that fills all of it is too large.

    Each part's exit code says whether its file was there; read the text with `small_file_text`."""
    return [["head", "-c", str(max_bytes + 1), "--", path] for path in paths]


def small_reads_output_bytes(count: int, max_bytes: int) -> int:
    """The output cap of one exec of `count` reads of `read_small_files_argvs`."""
    return count * (max_bytes + 1 + SMALL_READ_OVERHEAD_BYTES)


def small_file_text(result: ssh.CommandResult, max_bytes: int) -> str | None:
    """The text a `read_small_files_argvs` part read, None if the file was missing or unreadable.

    Raises InvalidInput (REMOTE_FILE_TOO_LARGE) when the file is larger than max_bytes. The text was decoded
    with replacement characters, which can only count more bytes than arrived, never fewer."""
    if result.exit_code != 0:
        return None
    if len(result.stdout.encode()) > max_bytes:
        too_large = ssh.RemoteFileTooLarge(f"{result.argv[-1]} has more than {max_bytes} bytes", max_bytes=max_bytes)
        raise portal_error(too_large) from too_large
    return result.stdout


def copy_files_argvs(copies: dict[str, str]) -> list[list[str]]:
    """One `cp -p` per (target: source), for `run_sequence`."""
    return [["cp", "-p", "--", source, target] for target, source in copies.items()]


def atom_count_argv(path: str) -> list[str]:
    """The first int32 of a NAMD binary coordinate/velocity file: its atom count."""
    return ["od", "-A", "n", "-t", "d4", "-N", "4", "--", path]


def size_argv(path: str) -> list[str]:
    return ["stat", "-c", "%s", "--", path]


@dataclass(frozen=True)
class RemoteFileFacts:
    size_bytes: int
    modified: float  # seconds since the epoch, to the nanosecond stat prints
    is_regular: bool


def file_facts_argv(path: str) -> list[str]:
    """Size, mtime and type of the file a path leads to (links followed): `SIZE MTIME TYPE` on one line."""
    return ["stat", "-L", "-c", "%s %.9Y %F", "--", path]


def parse_file_facts(stdout: str) -> RemoteFileFacts | None:
    """The facts `file_facts_argv` printed, None if its output is not that line."""
    size, _, rest = stdout.strip().partition(" ")
    modified, _, kind = rest.partition(" ")
    try:
        return RemoteFileFacts(int(size), float(modified), kind == "regular file")
    except ValueError:
        return None


def remove_trees_argv(paths: list[str]) -> list[str]:
    return ["rm", "-rf", "--", *paths]


# The output cap of the documents' listing: ≈ 150,000 paths of ≈ 110 bytes (job.json and the steps' documents
# with their scripts); a root with more is refused (REMOTE_OUTPUT_TOO_LARGE), not read.
DOCUMENTS_LISTING_MAX_BYTES = LISTING_MAX_BYTES


def find_job_documents_argv(project_root: str, max_bytes: int) -> list[str]:
    """The `.json` files smaller than max_bytes and the `.sbatch` files one level below a project root (in each
    job's folder): `job.json`, and a pipeline step's `<step>.json` beside its `<step>.sbatch`."""
    # `find` takes no `--`; the root is absolute (starts with '/'), so it cannot read as an option.
    return [
        "find",
        project_root,
        "-mindepth",
        "2",
        "-maxdepth",
        "2",
        "-type",
        "f",
        "(",
        "-name",
        "*.json",
        "-size",
        f"-{max_bytes // 1024}k",
        "-o",
        "-name",
        "*" + SCRIPT_SUFFIX,
        ")",
    ]


def job_document_paths(stdout: str, project_root: str) -> list[str]:
    """The job documents in a `find_job_documents_argv` listing, sorted (each folder's together): every
    `job.json`, and each `<step>.json` whose `<step>.sbatch` is beside it; lines outside the root are dropped."""
    listed = {line for line in stdout.splitlines() if line.startswith(project_root + "/")}
    documents = []
    for path in listed:
        folder, _, name = path.rpartition("/")
        stem = name.removesuffix(".json")
        if name == layout.METADATA_FILENAME or (stem != name and f"{folder}/{stem}{SCRIPT_SUFFIX}" in listed):
            documents.append(path)
    return sorted(documents)


def make_dirs(session: MemberSession, *dirs: str) -> None:
    """mkdir -p, then check every dir's realpath lies in the member's roots: two execs whatever their number.

    Raises Forbidden, PortalErrors."""
    session.run(["mkdir", "-p", "--", *dirs], check=True)
    session.confined_all(list(dirs))


TAR_BATCH_BYTES = 64 * 1024 * 1024  # files up to this size travel in tar batches of about this size


def input_dirs(job: Job, paths: Iterable[str]) -> list[str]:
    """The project dir and every folder the inputs at these paths (in the job folder) need."""
    folders = {str(PurePosixPath(path).parent) for path in paths} - {"."}
    return [job.project_dir, *sorted(f"{job.project_dir}/{folder}" for folder in folders)]


def tar_batches(inputs: list[Any]) -> list[list[Any]]:
    """Small inputs grouped into batches of about TAR_BATCH_BYTES (each one tar stream)."""
    batches: list[list[Any]] = [[]]
    size = 0
    for input_file in sorted((f for f in inputs if f.size_bytes <= TAR_BATCH_BYTES), key=lambda f: f.name):
        if batches[-1] and size + input_file.size_bytes > TAR_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(input_file)
        size += input_file.size_bytes
    return [batch for batch in batches if batch]


def sha256_mismatches(session: MemberSession, job: Job, inputs: list[Any]) -> set[str]:
    """The inputs whose copy in the project dir has another sha256 than the upload (one exec for all)."""
    result = session.run(["sha256sum", "--", *(f"{job.project_dir}/{f.name}" for f in inputs)], check=True)
    found = {}
    for line in result.stdout.splitlines():
        digest, _, path = line.partition("  ")
        found[path.removeprefix(f"{job.project_dir}/")] = digest
    return {f.name for f in inputs if found.get(f.name) != f.sha256}


def copy_tree_argv(source_dir: str, target_dir: str) -> list[str]:
    """rsync of the paths listed on stdin (one a line), folders kept, from one dir to another."""
    return ["rsync", "-a", "--files-from=-", "--", f"{source_dir}/", f"{target_dir}/"]


def copy_inputs_argv(source_dir: str, names: Iterable[str], target_dir: str) -> list[str]:
    """rsync of named files (paths in the job folder) from one job folder into another, their folders made.

    `--relative` keeps each path below the `/./` mark, so `namd/toppar/x.prm` lands in `namd/toppar/`."""
    return ["rsync", "-a", "--relative", "--", *(f"{source_dir}/./{name}" for name in names), f"{target_dir}/"]


# A sequence's whole command line is one argument of the remote shell (`sh -c LINE`), which Linux caps at 128 KiB
# (MAX_ARG_STRLEN); each part also carries its two marker printfs.
SEQUENCE_MAX_CHARS = 96 * 1024
SEQUENCE_PART_OVERHEAD_CHARS = 160


def sequence_chunks(argvs: list[list[str]], max_chars: int = SEQUENCE_MAX_CHARS) -> list[list[list[str]]]:
    """The argvs cut into runs of whole parts whose command line stays under `max_chars`: one exec each."""
    chunks: list[list[list[str]]] = []
    size = max_chars
    for argv in argvs:
        length = len(shlex.join(argv)) + SEQUENCE_PART_OVERHEAD_CHARS  # measured here, joined for real by the transport
        if size + length > max_chars:
            chunks.append([])
            size = 0
        chunks[-1].append(argv)
        size += length
    return chunks


def file_list(paths: Iterable[str]) -> bytes:
    return "".join(f"{path}\n" for path in paths).encode()


def write_metadata(session: MemberSession, *jobs: Job) -> None:
    """Rewrite the jobs' job.json (a pipeline step's `<step>.json`) in their project dir, in one write: jobs of
    one folder. A failure is logged, never fatal to the action that changed the jobs."""
    if not jobs:
        return
    loaded = Job.objects.select_related(
        "owner",
        "profile",
        "parent",
        "template_version__template",
        "pipeline__protocol",
        "protocol_stage",
        "sweep_point__sweep",
        "pipeline__sweep_point__sweep",
    )
    documents = {job.metadata_path: job_json_bytes(job) for job in loaded.filter(pk__in=[job.pk for job in jobs])}
    try:
        session.write_files(jobs[0].project_dir, documents)
    except PortalError as exc:
        logger.warning("job_json_write_failed", extra={"job_id": jobs[0].pk, "code": exc.code})


def read_log_argv(job: Job, offset: int, max_bytes: int) -> list[str]:
    """dd of the NAMD log (SLURM's stdout in scratch) from a byte offset: only what is new."""
    return [
        "dd",
        f"if={job.scratch_dir}/{job.slurm_log_name}",
        "bs=65536",
        "iflag=skip_bytes,count_bytes",
        f"skip={offset}",
        f"count={max_bytes}",
        "status=none",
    ]


def stderr_tail_argv(job: Job) -> list[str]:
    return ["tail", "-c", str(LOG_TAIL_BYTES), "--", f"{job.scratch_dir}/{job.slurm_err_name}"]


def copy_results_argv(job: Job) -> list[str]:
    """rsync on the cluster, scratch -> project (the trailing '/' copies the contents)."""
    return ["rsync", "-a", "--", f"{job.scratch_dir}/", f"{job.project_dir}/"]


def list_dir_argv(directory: str, *, depth: int = LISTING_MAX_DEPTH) -> list[str]:
    # `find` takes no `--`; the dir is absolute (starts with '/'), so it cannot read as an option.
    return ["find", directory, "-mindepth", "1", "-maxdepth", str(depth), "-printf", LISTING_FORMAT]


def copy_folder_argv(source_dir: str, target_dir: str, excluded: list[str]) -> list[str]:
    """rsync of one folder's content into another, leaving out the paths (anchored) and patterns given."""
    rules = [f"--exclude={'/' + path if '/' in path or '*' not in path else path}" for path in excluded]
    return ["rsync", "-a", *rules, "--", f"{source_dir}/", f"{target_dir}/"]


@dataclass(frozen=True)
class RemoteEntry:
    path: str  # relative to the listed dir
    is_dir: bool
    size_bytes: int
    modified: float

    def as_json(self) -> dict[str, object]:
        return {"path": self.path, "is_dir": self.is_dir, "size_bytes": self.size_bytes, "modified": self.modified}


LISTING_LINE_RE = re.compile(r"([dfl])\t([^\t]+)\t(\d+)\t([\d.]+)")


def parse_listing(stdout: str) -> list[RemoteEntry]:
    """Entries of `find -printf LISTING_FORMAT`, sorted by path; odd lines (names with tabs) are skipped."""
    entries = []
    for line in stdout.splitlines():
        match = LISTING_LINE_RE.fullmatch(line)
        if match:
            kind, path, size, modified = match.groups()
            entries.append(RemoteEntry(path, kind == "d", int(size), float(modified)))
    return sorted(entries, key=lambda entry: entry.path)


def tail(text: str, limit: int = LOG_TAIL_BYTES) -> str:
    return text[-limit:]
