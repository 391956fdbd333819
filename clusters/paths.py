"""Where on a cluster a member's files may live: user roots, relative paths inside them, realpath checks.

Owns the rules of STYLE §5 for remote paths: a member-supplied relative path is joined below a root
only if it cannot leave it, compared part by part, and the remote `realpath` is checked before a write
so that a symlink cannot lead outside the roots. Must never know Django, models or how a command
reaches the cluster: the realpath check takes any `runner(argv) -> CommandResult`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from clusters.ssh import CommandResult, RemoteCommandFailed, RemotePathForbidden

# The one rule for a cluster username, everywhere (credential forms and API, roots, paths): POSIX-portable
# names as useradd takes them, dots included (real sites have `first.last`). It starts with a letter or '_', so
# it is never '.', '..' or an option.
USERNAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_USERNAME_FIELD = "{username}"
# NUL ends a C string, newline/CR split the output of remote tools; no control character belongs in a path.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def expand_root(pattern: str, username: str) -> PurePosixPath:
    """Fill `{username}` in a root pattern such as `/home/{username}/namd_projects`. Raises ValueError."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(f"cluster username {username!r} does not match {USERNAME_PATTERN.pattern}")
    if "{" in pattern.replace(_USERNAME_FIELD, "") or "}" in pattern.replace(_USERNAME_FIELD, ""):
        raise ValueError(f"root pattern {pattern!r} may contain no placeholder other than {_USERNAME_FIELD}")
    root = pattern.replace(_USERNAME_FIELD, username)
    _check_root(root)
    return PurePosixPath(root)


def _check_root(root: str) -> None:
    """Raises ValueError unless root is absolute, normalized, not "/" and free of `..` and control chars."""
    if _CONTROL_CHARS.search(root):
        raise ValueError(f"root {root!r} contains a control character")
    if not root.startswith("/") or root.startswith("//"):
        raise ValueError(f"root {root!r} must be an absolute path starting with a single '/'")
    if ".." in root.split("/"):
        raise ValueError(f"root {root!r} must not contain '..'")
    if posixpath.normpath(root) != root:
        raise ValueError(f"root {root!r} is not normalized (want {posixpath.normpath(root)!r})")
    if root == "/":
        raise ValueError("the filesystem root '/' cannot be a user root")


def resolve_user_path(roots: Sequence[PurePosixPath | str], relpath: str) -> PurePosixPath:
    """Join a member's relative path below the first root; the result lies inside a root, part by part.

    Empty and `.` components are dropped ("a//b/." is "a/b"). Raises RemotePathForbidden for an empty,
    absolute or `..` path, a control character (NUL, newline, CR, ...) or a component starting with `-`;
    ValueError when the roots themselves are unusable.
    """
    if not roots:
        raise ValueError("at least one root is needed")
    root_paths = [_as_root(root) for root in roots]
    if not isinstance(relpath, str):
        raise RemotePathForbidden(f"a path must be text, not {type(relpath).__name__}")
    if _CONTROL_CHARS.search(relpath):
        raise RemotePathForbidden("a path must not contain control characters (NUL, newline, CR, ...)")
    if relpath.startswith("/"):
        raise RemotePathForbidden("a path must be relative to your project or scratch folder")
    parts = [part for part in relpath.split("/") if part not in ("", ".")]
    if not parts:
        raise RemotePathForbidden("a path must name something inside your project or scratch folder")
    for part in parts:
        if part == "..":
            raise RemotePathForbidden("a path must not contain '..'")
        if part.startswith("-"):
            # A leading dash would read as an option to the remote tool, even after `--` in some of them.
            raise RemotePathForbidden("no part of a path may start with '-'")
    candidate = root_paths[0].joinpath(*parts)
    if not is_inside_roots(root_paths, candidate):
        raise RemotePathForbidden("the path lies outside your project and scratch folders")
    return candidate


def is_inside_roots(roots: Sequence[PurePosixPath], path: PurePosixPath) -> bool:
    """True when path is strictly below one of the roots, compared part by part (never `startswith`)."""
    if ".." in path.parts:
        return False
    return any(len(path.parts) > len(root.parts) and path.parts[: len(root.parts)] == root.parts for root in roots)


def _as_root(root: PurePosixPath | str) -> PurePosixPath:
    text = str(root)
    _check_root(text)
    return PurePosixPath(text)


def check_remote_realpath(
    runner: Callable[[list[str]], CommandResult],
    roots: Sequence[PurePosixPath | str],
    path: PurePosixPath | str,
) -> PurePosixPath:
    """Return the remote realpath of `path` if it lies inside the realpath of a root (symlink escape check).

    Raises RemotePathForbidden, RemoteCommandFailed, and the transport errors of `runner`.
    """
    (resolved,) = check_remote_realpaths(runner, roots, [path])
    return resolved


def check_remote_realpaths(
    runner: Callable[[list[str]], CommandResult],
    roots: Sequence[PurePosixPath | str],
    paths: Sequence[PurePosixPath | str],
) -> list[PurePosixPath]:
    """The remote realpaths of `paths`, each checked to lie inside the realpath of a root, in one exec.

    The roots are resolved in the same exec, so that a root which is itself a symlink (e.g. /scratch/u ->
    /lustre/u, common on clusters) still works. Raises RemotePathForbidden (naming nothing of the remote
    side), RemoteCommandFailed, and the transport errors of `runner`.
    """
    root_paths = [_as_root(root) for root in roots]
    if not root_paths or not paths:
        raise ValueError("at least one root and one path are needed")
    texts = [str(path) for path in paths]
    if any(_CONTROL_CHARS.search(text) or not text.startswith("/") for text in texts):
        raise RemotePathForbidden("only an absolute path without control characters can be checked")
    argv = ["realpath", "-m", "--", *(str(root) for root in root_paths), *texts]
    result = runner(argv)
    if result.exit_code != 0:
        raise RemoteCommandFailed(f"remote command 'realpath' exited with status {result.exit_code}", result=result)
    lines = result.stdout.split("\n")
    # One line per argument plus the empty string after the last newline; anything else is not realpath's.
    if len(lines) != len(argv) - 2 or lines[-1] != "" or not all(line.startswith("/") for line in lines[:-1]):
        raise RemotePathForbidden("the remote realpath output could not be read")
    resolved_roots = [PurePosixPath(line) for line in lines[: len(root_paths)]]
    resolved = [PurePosixPath(line) for line in lines[len(root_paths) : -1]]
    if not all(is_inside_roots(resolved_roots, path) for path in resolved):
        raise RemotePathForbidden("the path leads outside your project and scratch folders (through a symlink?)")
    return resolved
