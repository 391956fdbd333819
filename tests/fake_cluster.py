"""A member's session on a cluster that never leaves the test process: fast tests of the task-side services.

`FakeMemberSession` has MemberSession's public surface. It records every argv it is given, in order (the
parts of a sequence one by one, uploads and downloads as `upload -- PATH` / `download -- PATH`, as
MemberSession records them), and answers from a small in-memory model of the remote side:
- the shell tools the services use (mkdir, realpath, tar -x, rsync, head, sha256sum, dd, tail, find, cp, od,
  stat, rm, echo) act on one dict of remote files, so what one command writes the next one reads; the
  transport's output cap applies to what they print;
- SLURM's tools answer with outputs RECORDED on the local cluster (tests/fixtures/slurm/22.05): rows of the
  recorded squeue/sacct status outputs, whole recorded sbatch answers and find-by-name sequences. Nothing of
  SLURM's is made up here: a question without a recorded answer raises NotRecorded.
MemberSession's own path checks and tar packing run unchanged (`confined`, `confined_all`, `write_files`
are its functions), and `slurm()` is the real SlurmClient over the fake's run/run_sequence.
Must never know the jobs app: tests hand it paths and recordings.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import shlex
import tarfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters import ssh
from clusters.gateway import MemberSession, portal_error
from clusters.models import ClusterCredential
from clusters.slurm import (
    DERIVED_JOB_ID_PATTERN,
    SlurmClient,
    parse_sbatch_output,
)
from clusters.ssh import CommandResult, TransportError
from clusters.ssh.transfer import TransferResult
from portal.errors import NotFound

SLURM_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slurm" / "22.05"
STDOUT_HEADER = "# --- stdout ---\n"
STDERR_HEADER = "# --- stderr ---\n"
# What GNU coreutils print for a missing file (coreutils 9.1, Debian 12), by tool.
MISSING_FILE_STDERR = {
    "cp": "cp: cannot stat '{path}': No such file or directory\n",
    "dd": "dd: failed to open '{path}': No such file or directory\n",
    "head": "head: cannot open '{path}' for reading: No such file or directory\n",
    "od": "od: {path}: No such file or directory\n",
    "sha256sum": "sha256sum: {path}: No such file or directory\n",
    "stat": "stat: cannot statx '{path}': No such file or directory\n",
    "tail": "tail: cannot open '{path}' for reading: No such file or directory\n",
}
DIRECTORY_SIZE = 4096


class WorkerKilled(BaseException):
    """The worker process died here (SIGKILL): nothing after this line of the task runs, nothing is recorded."""


class NotRecorded(AssertionError):
    """The fake was asked something it has no recorded (SLURM) or modelled (shell) answer for."""


# ------------------------------------------------------------------ recordings


@dataclass(frozen=True)
class Recording:
    """One file of tests/fixtures/slurm/22.05: the command as run, its exit code and its two streams."""

    name: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def argvs(self) -> list[list[str]]:
        """The argvs of the command (a sequence's parts split at its ` ; `)."""
        parts: list[list[str]] = [[]]
        for token in shlex.split(self.command):
            if token == ";":
                parts.append([])
            else:
                parts[-1].append(token)
        return parts


def recording(name: str) -> Recording:
    header, streams = (SLURM_FIXTURES / name).read_text().split(STDOUT_HEADER, 1)
    stdout, stderr = streams.split(STDERR_HEADER, 1)
    fields = dict(line[2:].split(": ", 1) for line in header.splitlines() if line.startswith("# ") and ": " in line)
    return Recording(name, fields["command"], int(fields["exit_code"]), stdout, stderr)


def _option(argv: Sequence[str], name: str) -> str | None:
    prefix = f"--{name}="
    return next((arg.removeprefix(prefix) for arg in argv if arg.startswith(prefix)), None)


def _base_id(job_id: str) -> str:
    derived = DERIVED_JOB_ID_PATTERN.fullmatch(job_id)
    return derived.group(1) if derived else job_id


def _result(argv: Sequence[str], exit_code: int = 0, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(tuple(argv), exit_code, stdout, stderr, 0.001)


# ------------------------------------------------------------------ SLURM, from recordings


@dataclass
class FakeSlurm:
    """What SLURM knows, as recorded rows; sbatch answers are scripted by the test, in order."""

    # (tool, --format) -> base job id -> rows as printed
    rows: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    sbatch_answers: deque[Recording] = field(default_factory=deque)
    queued: dict[str, str] = field(default_factory=dict)  # job name -> id, from accepted sbatch answers
    accepted: list[str] = field(default_factory=list)  # every id sbatch queued, in order

    def knows(self, recording_stem: str, *job_ids: str) -> None:
        """Take the rows of these ids (all if none given) from a recorded status answer: its squeue and its sacct
        parts (`<stem>_squeue.txt`, `<stem>_sacct.txt`).

        Rows replace what the fake knew of those ids: a later recording moves a job on (RUNNING -> TIMEOUT).
        """
        for part in ("squeue", "sacct"):
            self._take_rows(f"{recording_stem}_{part}.txt", part, job_ids)
        missing = set(job_ids) - {base for table in self.rows.values() for base in table}
        if missing:
            raise NotRecorded(f"{recording_stem} has no row of {sorted(missing)}")

    def knows_usage(self, recording_name: str, *job_ids: str) -> None:
        """Take the rows of these ids (all if none given) from a recorded usage answer (`usage_*.txt`, one sacct)."""
        taken = self._take_rows(recording_name, "sacct", job_ids)
        if set(job_ids) - set(taken):
            raise NotRecorded(f"{recording_name} has no row of {sorted(set(job_ids) - set(taken))}")

    def _take_rows(self, recording_name: str, program: str, job_ids: tuple[str, ...]) -> dict[str, list[str]]:
        rec = recording(recording_name)
        (argv,) = rec.argvs
        if argv[0] != program:
            raise NotRecorded(f"{rec.name}: not a {program} recording")
        table = self.rows.setdefault((argv[0], _option(argv, "format") or ""), {})
        taken: dict[str, list[str]] = {}
        for line in rec.stdout.splitlines():
            base = _base_id(line.split("|", 1)[0])
            if not job_ids or base in job_ids:
                taken.setdefault(base, []).append(line)
        table.update(taken)
        return taken

    def answer_sbatch(self, recording_name: str) -> None:
        """The next sbatch answers with this recorded answer (sbatch_ok_*, sbatch_accepted_*, sbatch_err_*)."""
        rec = recording(recording_name)
        if rec.argvs[0][0] != "sbatch":
            raise NotRecorded(f"{recording_name} is not an sbatch answer")
        self.sbatch_answers.append(rec)

    def answer(self, argv: Sequence[str], files: RemoteFiles) -> CommandResult:
        program = argv[0]
        if program == "sbatch":
            return self._sbatch(argv, files)
        name = _option(argv, "name")
        if name is not None and program in ("squeue", "sacct"):
            return self._find_by_name(argv, name)
        if program in ("squeue", "sacct"):
            return self._status(argv)
        if program == "scancel":
            # scancel prints nothing and exits 0 for a queued, a finished or a never-seen id alike (22.05).
            rec = recording("scancel_pending_held.txt")
            return _result(argv, rec.exit_code, rec.stdout, rec.stderr)
        raise NotRecorded(f"no recorded answer for {shlex.join(argv)}")

    def _sbatch(self, argv: Sequence[str], files: RemoteFiles) -> CommandResult:
        script = argv[-1]
        if script not in files.files:
            rec = recording("sbatch_err_missing_script.txt")
        elif self.sbatch_answers:
            rec = self.sbatch_answers.popleft()
        else:
            raise NotRecorded("sbatch was run but the test scripted no answer (fake.slurm.answer_sbatch)")
        if rec.exit_code == 0:
            name = _option(argv, "job-name")
            self.accepted.append(parse_sbatch_output(rec.stdout))
            if name is not None:
                self.queued[name] = self.accepted[-1]
        return _result(argv, rec.exit_code, rec.stdout, rec.stderr)

    def _find_by_name(self, argv: Sequence[str], name: str) -> CommandResult:
        """One part (squeue or sacct) of the find-by-name look-up, from the recording of that part for that name."""
        job_id = self.queued.get(name)
        program = argv[0]
        if job_id is None:
            rec = recording(f"find_by_name_absent_{program}.txt")  # its output names nothing: any name's answer
        else:
            found = [recording(path.name) for path in sorted(SLURM_FIXTURES.glob(f"find_by_name*_{program}.txt"))]
            matching = [rec for rec in found if _option(rec.argvs[0], "name") == name]
            if not matching or (program == "squeue" and f"{job_id}|{name}" not in matching[0].stdout):
                raise NotRecorded(f"no recorded find-by-name answer of {program} listing job {job_id} as {name}")
            rec = matching[0]
        return _result(argv, rec.exit_code, rec.stdout, rec.stderr)

    def _status(self, argv: Sequence[str]) -> CommandResult:
        ids = (_option(argv, "jobs") or "").split(",")
        table = self.rows.get((argv[0], _option(argv, "format") or ""))
        if table is None:
            raise NotRecorded(f"no recorded {argv[0]} rows in the format of {shlex.join(argv)}")
        lines = [line for job_id in ids for line in table.get(job_id, [])]
        if argv[0] == "squeue" and not lines:
            # A lone unknown or purged id: exit 1 and a complaint; several: nothing, exit 0 (both recorded).
            rec = recording("squeue_lone_never_existed_id.txt" if len(ids) == 1 else "squeue_unknown_ids.txt")
            return _result(argv, rec.exit_code, rec.stdout, rec.stderr)
        return _result(argv, 0, "".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------ the remote files


@dataclass
class RemoteFile:
    data: bytes
    mtime: float


@dataclass
class RemoteFiles:
    """The member's side of the cluster: files by absolute path, and directories. No symlinks."""

    files: dict[str, RemoteFile] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    corrupted: set[str] = field(default_factory=set)  # writes to these paths arrive damaged

    def make_dir(self, path: str) -> None:
        while path not in ("/", ""):
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def write(self, path: str, data: bytes) -> None:
        if path in self.corrupted:
            data = bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\x00"
        self.make_dir(posixpath.dirname(path))
        self.files[path] = RemoteFile(data, time.time())

    def below(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(path for path in [*self.files, *self.dirs] if path.startswith(prefix))


def _paths_after_dashes(argv: Sequence[str]) -> list[str]:
    return list(argv[list(argv).index("--") + 1 :])


class RemoteShell:
    """The coreutils, tar and rsync calls the services make, acting on RemoteFiles."""

    def __init__(self, files: RemoteFiles) -> None:
        self.files = files

    def answer(self, argv: Sequence[str], stdin: bytes | None) -> CommandResult:
        handler = getattr(self, f"_{argv[0]}", None)
        if handler is None:
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        return handler(list(argv), stdin)

    def _missing(self, argv: list[str], path: str) -> CommandResult:
        return _result(argv, 1, "", MISSING_FILE_STDERR[argv[0]].format(path=path))

    def _mkdir(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        for path in _paths_after_dashes(argv):
            self.files.make_dir(posixpath.normpath(path))
        return _result(argv)

    def _realpath(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        return _result(argv, 0, "".join(f"{posixpath.normpath(path)}\n" for path in _paths_after_dashes(argv)))

    def _tar(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        if argv[:5] != ["tar", "-x", "--no-same-owner", "-f", "-"] or argv[5] != "-C" or stdin is None:
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        target = argv[6]
        with tarfile.open(fileobj=io.BytesIO(stdin), mode="r:") as archive:
            for member in archive.getmembers():
                extracted = archive.extractfile(member)
                if extracted is not None:
                    self.files.write(posixpath.join(target, member.name), extracted.read())
        return _result(argv)

    def _rsync(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        options = argv[1 : argv.index("--")]
        if options == ["-a", "--relative"]:
            return self._rsync_relative(argv)
        source, target = _paths_after_dashes(argv)
        if not source.endswith("/") or not target.endswith("/") or not set(options) <= {"-a", "--files-from=-"}:
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        if "--files-from=-" in options:
            names = (stdin or b"").decode().splitlines()
        else:
            names = [path.removeprefix(source) for path in self.files.below(source)]
        missing = []
        for name in names:
            path = source + name
            if path in self.files.files:
                self.files.write(target + name, self.files.files[path].data)
            elif path in self.files.dirs:
                self.files.make_dir(target + name)
            else:
                missing.append(f'rsync: [sender] link_stat "{path}" failed: No such file or directory (2)\n')
        return self._rsync_result(argv, missing)

    def _rsync_relative(self, argv: list[str]) -> CommandResult:
        """`rsync -a --relative -- SRC/./PATH... TARGET/`: each PATH (the part after `/./`) lands below TARGET."""
        *sources, target = _paths_after_dashes(argv)
        if not target.endswith("/") or not all("/./" in source for source in sources):
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        missing = []
        for source in sources:
            path = source.replace("/./", "/", 1)
            if path in self.files.files:
                self.files.write(target + source.split("/./", 1)[1], self.files.files[path].data)
            else:
                missing.append(f'rsync: [sender] link_stat "{source}" failed: No such file or directory (2)\n')
        return self._rsync_result(argv, missing)

    @staticmethod
    def _rsync_result(argv: list[str], missing: list[str]) -> CommandResult:
        if missing:
            # rsync 3.5.0 (the local cluster's) copies the rest, then says so and exits 23.
            ending = (
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23) "
                "at main.c(1394) [sender=3.5.0]\n"
            )
            return _result(argv, 23, "", "".join(missing) + ending)
        return _result(argv)

    def _head(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        (path,) = _paths_after_dashes(argv)
        if argv[1] != "-c":
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        if path not in self.files.files:
            return self._missing(argv, path)
        return _result(argv, 0, self.files.files[path].data[: int(argv[2])].decode("utf-8", errors="replace"))

    def _sha256sum(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        lines, errors = [], []
        for path in _paths_after_dashes(argv):
            if path in self.files.files:
                lines.append(f"{hashlib.sha256(self.files.files[path].data).hexdigest()}  {path}\n")
            else:
                errors.append(MISSING_FILE_STDERR["sha256sum"].format(path=path))
        return _result(argv, 1 if errors else 0, "".join(lines), "".join(errors))

    def _dd(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        options = dict(arg.split("=", 1) for arg in argv[1:])
        if options.get("iflag") != "skip_bytes,count_bytes":
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        path = options["if"]
        if path not in self.files.files:
            return self._missing(argv, path)
        skip, count = int(options["skip"]), int(options["count"])
        return _result(argv, 0, self.files.files[path].data[skip : skip + count].decode("utf-8", errors="replace"))

    def _tail(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        (path,) = _paths_after_dashes(argv)
        if argv[1] != "-c" or path not in self.files.files:
            return self._missing(argv, path)
        return _result(argv, 0, self.files.files[path].data[-int(argv[2]) :].decode("utf-8", errors="replace"))

    def _find(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        directory, depth = argv[1], int(argv[argv.index("-maxdepth") + 1])
        if argv[2:4] != ["-mindepth", "1"] or argv[-2:] != ["-printf", "%y\t%P\t%s\t%T@\n"]:
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        lines = []
        for path in self.files.below(directory):
            relative = path.removeprefix(directory.rstrip("/") + "/")
            if relative.count("/") >= depth:
                continue
            entry = self.files.files.get(path)
            size, mtime = (len(entry.data), entry.mtime) if entry else (DIRECTORY_SIZE, 0.0)
            lines.append(f"{'f' if entry else 'd'}\t{relative}\t{size}\t{mtime:.10f}\n")
        return _result(argv, 0, "".join(lines))

    def _cp(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        source, target = _paths_after_dashes(argv)
        if source not in self.files.files:
            return self._missing(argv, source)
        self.files.write(target, self.files.files[source].data)
        return _result(argv)

    def _od(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        (path,) = _paths_after_dashes(argv)
        if argv[1:8] != ["-A", "n", "-t", "d4", "-N", "4", "--"]:
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        if path not in self.files.files:
            return self._missing(argv, path)
        value = int.from_bytes(self.files.files[path].data[:4], "little", signed=True)
        return _result(argv, 0, f" {value:>11}\n")

    def _stat(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        (path,) = _paths_after_dashes(argv)
        if argv[1:-2] not in (["-c", "%s"], ["-L", "-c", "%s %.9Y %F"]):
            raise NotRecorded(f"the fake cluster does not model {shlex.join(argv)}")
        if path in self.files.dirs and argv[1] == "-L":
            return _result(argv, 0, f"{DIRECTORY_SIZE} 0.000000000 directory\n")
        if path not in self.files.files:
            return self._missing(argv, path)
        entry = self.files.files[path]
        if argv[1] == "-L":
            return _result(argv, 0, f"{len(entry.data)} {entry.mtime:.9f} regular file\n")
        return _result(argv, 0, f"{len(entry.data)}\n")

    def _rm(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        for path in _paths_after_dashes(argv):
            for gone in [path, *self.files.below(path)]:
                self.files.files.pop(gone, None)
                self.files.dirs.discard(gone)
        return _result(argv)

    def _echo(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        return _result(argv, 0, " ".join(argv[1:]) + "\n")


# ------------------------------------------------------------------ the session


@dataclass
class Fault:
    program: str
    error: TransportError
    after_running: bool  # the command took effect on the cluster, then the reply was lost


def _check_output_size(results: list[CommandResult], max_output_bytes: int) -> None:
    """The transport's output cap, on what the parts printed (the real one stops the command at the cap)."""
    printed = sum(len(result.stdout.encode()) + len(result.stderr.encode()) for result in results)
    if printed > max_output_bytes:
        too_large = ssh.RemoteOutputTooLarge(f"printed {printed} bytes", max_bytes=max_output_bytes)
        raise portal_error(too_large) from too_large


def slurm_client(session: FakeMemberSession) -> SlurmClient:
    """The SLURM adapter over the fake, wired exactly as MemberSession.slurm() wires it (adapt both together)."""

    def run(argv: Sequence[str], timeout_s: float) -> CommandResult:
        return session.run(list(argv), timeout_s=timeout_s)

    def run_sequence(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[CommandResult]:
        return session.run_sequence([list(argv) for argv in argvs], timeout_s=timeout_s)

    return SlurmClient(run=run, run_sequence=run_sequence)


class FakeMemberSession:
    """MemberSession's surface over RemoteFiles and FakeSlurm; bound to the first credential it is asked for."""

    # MemberSession's own code, run against the fake's `run` and `roots`.
    roots = MemberSession.roots
    confined = MemberSession.confined
    confined_all = MemberSession.confined_all

    def __init__(self) -> None:
        self.credential: ClusterCredential | None = None
        self.profile: Any = None
        self.task_id = ""
        self.remote = RemoteFiles()
        self.shell = RemoteShell(self.remote)
        self.scheduler = FakeSlurm()
        self.faults: list[Fault] = []
        self.kill_at: tuple[int, bool] | None = None  # (command index, after it took effect)
        self.argvs: list[tuple[str, ...]] = []  # every argv, in order (a sequence's parts one by one)
        self.sequences: list[tuple[tuple[str, ...], ...]] = []  # each run_sequence call's argvs
        self.written: list[tuple[str, tuple[str, ...]]] = []  # write_files: (directory, names)
        self.task_ids: list[str] = []
        self.acting_user_ids: list[int | None] = []  # each session's acting user, in order

    # ---------------------------------------------------------- the seam: jobs.remote.member_session

    def for_job(
        self, job: Any, *, acting_user_id: int | None, task_id: str = "", for_group: bool = False
    ) -> FakeMemberSession:
        """jobs.remote.member_session's contract: the owner's credential for the job's cluster, else NotFound."""
        credential = (
            ClusterCredential.objects.select_related("profile")
            .filter(user_id=job.owner_id, profile_id=job.profile_id)
            .first()
        )
        if credential is None:
            raise NotFound("The job's owner has no credential for this cluster.", code="CREDENTIAL_NOT_FOUND")
        if self.credential is not None and self.credential.pk != credential.pk:
            raise AssertionError("one FakeMemberSession plays one member on one cluster")
        self.credential, self.profile, self.task_id = credential, credential.profile, task_id
        self.task_ids.append(task_id)
        self.acting_user_ids.append(acting_user_id)
        return self

    # ---------------------------------------------------------- scripting

    def put(self, path: str, data: bytes) -> None:
        """A file already on the cluster (e.g. a parent job's results)."""
        self.remote.write(path, data)

    def file(self, path: str) -> bytes:
        return self.remote.files[path].data

    def has_file(self, path: str) -> bool:
        return path in self.remote.files

    def fail(self, program: str, error: TransportError, *, after_running: bool = False) -> None:
        """The next command of `program` fails with this transport error (before or after it took effect)."""
        self.faults.append(Fault(program, error, after_running))

    def kill_worker_at(self, index: int, *, after_running: bool) -> None:
        """The worker dies at the index-th command from now (0-based), before or after it took effect."""
        self.kill_at = (len(self.argvs) + index, after_running)

    def _killed_here(self, *, after_running: bool) -> None:
        if self.kill_at == (len(self.argvs) - 1, after_running):
            self.kill_at = None
            raise WorkerKilled(self.argvs[-1][0])

    def corrupt(self, path: str) -> None:
        """Every later write of this path arrives with its first byte changed."""
        self.remote.corrupted.add(path)

    def ran(self, program: str) -> list[tuple[str, ...]]:
        return [argv for argv in self.argvs if argv[0] == program]

    # ---------------------------------------------------------- MemberSession's surface

    def _answer(self, argv: list[str], stdin: bytes | None) -> CommandResult:
        self.argvs.append(tuple(argv))
        self._killed_here(after_running=False)
        fault = next((fault for fault in self.faults if fault.program == argv[0]), None)
        if fault is not None:
            self.faults.remove(fault)
            if not fault.after_running:
                raise portal_error(fault.error) from fault.error
        if argv[0] in ("sbatch", "squeue", "sacct", "scancel"):
            result = self.scheduler.answer(argv, self.remote)
        else:
            result = self.shell.answer(argv, stdin)
        self._killed_here(after_running=True)
        if fault is not None:
            raise portal_error(fault.error) from fault.error
        return result

    def run(
        self,
        argv: list[str],
        *,
        timeout_s: float = 30.0,
        stdin: bytes | None = None,
        check: bool = False,
        max_output_bytes: int = ssh.DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CommandResult:
        result = self._answer(ssh.validate_argv(list(argv)), stdin)
        _check_output_size([result], max_output_bytes)
        if check and result.exit_code != 0:
            failed = ssh.RemoteCommandFailed(f"remote command {argv[0]!r} exited {result.exit_code}", result=result)
            raise portal_error(failed) from failed
        return result

    def run_sequence(
        self, argvs: list[list[str]], *, timeout_s: float = 30.0, max_output_bytes: int = ssh.DEFAULT_MAX_OUTPUT_BYTES
    ) -> list[CommandResult]:
        parts = [ssh.validate_argv(list(argv)) for argv in argvs]
        self.sequences.append(tuple(tuple(argv) for argv in parts))
        results = [self._answer(argv, None) for argv in parts]
        _check_output_size(results, max_output_bytes)
        return results

    def slurm(self) -> SlurmClient:
        return slurm_client(self)

    def write_files(self, directory: str, files: dict[str, bytes], *, timeout_s: float = 60.0) -> None:
        self.written.append((directory, tuple(files)))
        MemberSession.write_files(self, directory, files, timeout_s=timeout_s)  # type: ignore[arg-type]

    def _transfer(self, direction: str, remote_path: str) -> None:
        argv = [direction, "--", remote_path]
        self.argvs.append(tuple(argv))
        fault = next((fault for fault in self.faults if fault.program == direction), None)
        if fault is not None:
            self.faults.remove(fault)
            raise portal_error(fault.error) from fault.error

    def upload(
        self, local_path: str, remote_path: str, *, progress: Any = None, verify_sha256: bool = False
    ) -> TransferResult:
        target = self.confined(remote_path)
        self._transfer("upload", target)
        data = Path(local_path).read_bytes()
        self.remote.write(target, data)
        if self.remote.files[target].data != data:
            # transfer.upload checks size and sha256 of `<path>.part` before its `mv`: nothing is left behind.
            del self.remote.files[target]
            corrupted = ssh.TransferCorrupted(f"{target}: the sha256 of the copy differs from the original's")
            raise portal_error(corrupted) from corrupted
        if progress is not None:
            progress(len(data), len(data))
        digest = hashlib.sha256(data).hexdigest() if verify_sha256 else None
        return TransferResult(size_bytes=len(data), duration_s=0.001, sha256=digest)

    def download(
        self,
        remote_path: str,
        local_path: str,
        *,
        progress: Any = None,
        verify_sha256: bool = False,
        max_bytes: int | None = None,
    ) -> TransferResult:
        source = self.confined(remote_path)
        self._transfer("download", source)
        if source not in self.remote.files:
            missing = ssh.RemoteFileMissing(f"{source} is missing")
            raise portal_error(missing) from missing
        data = self.remote.files[source].data
        if max_bytes is not None and len(data) > max_bytes:
            too_large = ssh.RemoteFileTooLarge(f"{source} has {len(data)} bytes", max_bytes=max_bytes)
            raise portal_error(too_large) from too_large
        Path(local_path).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest() if verify_sha256 else None
        return TransferResult(size_bytes=len(data), duration_s=0.001, sha256=digest)
