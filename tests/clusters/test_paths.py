"""clusters.paths without a cluster: root expansion, relative path resolution, realpath output checks."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from clusters.paths import (
    check_remote_realpath,
    check_remote_realpaths,
    expand_root,
    is_inside_roots,
    resolve_user_path,
)
from clusters.ssh import CommandResult, RemoteCommandFailed, RemotePathForbidden

ROOTS = [PurePosixPath("/home/alice/namd_projects"), PurePosixPath("/scratch/alice")]


def test_expand_root_fills_the_username() -> None:
    assert expand_root("/home/{username}/namd_projects", "alice") == PurePosixPath("/home/alice/namd_projects")
    assert expand_root("/scratch/{username}", "np_ci-1") == PurePosixPath("/scratch/np_ci-1")


@pytest.mark.parametrize("username", ["", "Alice", "1alice", "al ice", "a/b", "..", "-x", "a" * 33, "alice\n"])
def test_expand_root_rejects_invalid_usernames(username: str) -> None:
    with pytest.raises(ValueError, match="does not match"):
        expand_root("/home/{username}", username)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/home/{user}", "placeholder"),
        ("/home/{username!r}", "placeholder"),
        ("/home/{username:>9}", "placeholder"),
        ("/home/{{username}}", "placeholder"),
        ("home/{username}", "absolute"),
        ("//home/{username}", "absolute"),
        ("/home/../{username}", r"'\.\.'"),
        ("/home/./{username}", "normalized"),
        ("/home/{username}/", "normalized"),
        ("/home//{username}", "normalized"),
        ("/home/{username}\n", "control"),
        ("/", "filesystem root"),
    ],
)
def test_expand_root_rejects_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_root(pattern, "alice")


def test_resolve_joins_below_the_first_root() -> None:
    assert resolve_user_path(ROOTS, "proj1/run 2/in.namd") == PurePosixPath(
        "/home/alice/namd_projects/proj1/run 2/in.namd"
    )
    assert resolve_user_path(["/scratch/alice"], "./a//b/.") == PurePosixPath("/scratch/alice/a/b")


@pytest.mark.parametrize(
    "relpath",
    [
        "",
        ".",
        "./",
        "/etc/passwd",
        "..",
        "a/../../etc",
        "a/..",
        "a\x00b",
        "a\nb",
        "a\rb",
        "-rf",
        "a/-b",
        "a/--help/c",
    ],
)
def test_resolve_rejects_unsafe_relpaths(relpath: str) -> None:
    with pytest.raises(RemotePathForbidden) as excinfo:
        resolve_user_path(ROOTS, relpath)

    assert excinfo.value.code == "REMOTE_PATH_FORBIDDEN"


@pytest.mark.parametrize("roots", [[], ["relative/root"], ["/"], ["/a/../b"]])
def test_resolve_rejects_unusable_roots(roots: list[str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message, tested with expand_root
        resolve_user_path(roots, "x")


def test_inside_is_compared_part_by_part_not_by_prefix() -> None:
    root = [PurePosixPath("/scratch/alice")]

    assert is_inside_roots(root, PurePosixPath("/scratch/alice2/x")) is False
    assert is_inside_roots(root, PurePosixPath("/scratch/alice")) is False
    assert is_inside_roots(root, PurePosixPath("/scratch/alice/../bob")) is False
    assert is_inside_roots(root, PurePosixPath("/scratch/alice/x")) is True


@given(
    relpath=st.text(
        alphabet=st.sampled_from(["a", "-", ".", "/", "\x00", "\n", "\r", " ", "é", "$", "\\"]), max_size=20
    )
)
@example(relpath="../x")
@example(relpath="a/./../../b")
def test_no_resolved_path_escapes_its_root(relpath: str) -> None:
    try:
        resolved = resolve_user_path(ROOTS, relpath)
    except RemotePathForbidden:
        return

    root = ROOTS[0]
    assert resolved.parts[: len(root.parts)] == root.parts
    assert len(resolved.parts) > len(root.parts)
    assert ".." not in resolved.parts
    assert not any(part.startswith("-") for part in resolved.parts)
    assert not any(char in str(resolved) for char in "\x00\n\r")
    assert str(PurePosixPath(str(resolved))) == str(resolved)


@given(relpath=st.text(max_size=40))
def test_no_arbitrary_text_escapes_its_root(relpath: str) -> None:
    try:
        resolved = resolve_user_path(ROOTS, relpath)
    except RemotePathForbidden:
        return

    assert is_inside_roots(ROOTS[:1], resolved) is True


def fake_runner(stdout: str, exit_code: int = 0) -> tuple[list[list[str]], object]:
    calls: list[list[str]] = []

    def runner(argv: list[str]) -> CommandResult:
        calls.append(argv)
        return CommandResult(tuple(argv), exit_code, stdout, "", 0.01)

    return calls, runner


def test_realpath_check_resolves_roots_and_path_in_one_call() -> None:
    calls, runner = fake_runner("/lustre/alice\n/lustre/alice/run1/out\n")

    resolved = check_remote_realpath(runner, ["/scratch/alice"], PurePosixPath("/scratch/alice/run1/out"))

    assert resolved == PurePosixPath("/lustre/alice/run1/out")
    assert calls == [["realpath", "-m", "--", "/scratch/alice", "/scratch/alice/run1/out"]]


def test_many_paths_are_checked_in_one_call_and_one_escape_refuses_them_all() -> None:
    calls, runner = fake_runner("/scratch/alice\n/scratch/alice/a\n/scratch/alice/a/b\n")
    paths = ["/scratch/alice/a", "/scratch/alice/a/b"]
    assert check_remote_realpaths(runner, ["/scratch/alice"], paths) == [PurePosixPath(p) for p in paths]
    assert calls == [["realpath", "-m", "--", "/scratch/alice", *paths]]
    _calls, escaping = fake_runner("/scratch/alice\n/scratch/alice/a\n/etc\n")
    with pytest.raises(RemotePathForbidden, match="outside"):
        check_remote_realpaths(escaping, ["/scratch/alice"], paths)


def test_realpath_check_rejects_a_symlink_out_of_the_roots() -> None:
    _calls, runner = fake_runner("/scratch/alice\n/etc/passwd\n")

    with pytest.raises(RemotePathForbidden, match="outside"):
        check_remote_realpath(runner, ["/scratch/alice"], "/scratch/alice/link/passwd")


@pytest.mark.parametrize("stdout", ["", "/scratch/alice\n", "/scratch/alice\nrelative\n", "/a\n/a/b\n/a/c\n"])
def test_realpath_check_rejects_unexpected_output(stdout: str) -> None:
    _calls, runner = fake_runner(stdout)

    with pytest.raises(RemotePathForbidden, match="could not be read"):
        check_remote_realpath(runner, ["/scratch/alice"], "/scratch/alice/x")


def test_realpath_check_reports_a_failing_realpath() -> None:
    _calls, runner = fake_runner("", exit_code=1)

    with pytest.raises(RemoteCommandFailed) as excinfo:
        check_remote_realpath(runner, ["/scratch/alice"], "/scratch/alice/x")

    assert excinfo.value.result is not None
    assert excinfo.value.result.exit_code == 1


@pytest.mark.parametrize("path", ["relative/x", "/scratch/alice/a\nb"])
def test_realpath_check_refuses_to_ask_about_unsafe_paths(path: str) -> None:
    calls, runner = fake_runner("/scratch/alice\n/scratch/alice/x\n")

    with pytest.raises(RemotePathForbidden):
        check_remote_realpath(runner, ["/scratch/alice"], path)

    assert calls == []


@pytest.mark.parametrize(
    ("username", "is_valid"),
    [("first.last", True), ("alice", True), ("_svc-1", True), (".hidden", False), ("Alice", False), ("a/b", False)],
)
def test_a_cluster_username_follows_one_rule_in_the_model_and_in_the_roots(username, is_valid) -> None:
    from django.core.exceptions import ValidationError

    from clusters.models import validate_remote_username

    try:
        validate_remote_username(username)
        model_accepts = True
    except ValidationError:
        model_accepts = False
    try:
        root = expand_root("/home/{username}/namd_projects", username)
        roots_accept = True
    except ValueError:
        roots_accept = False
    assert (model_accepts, roots_accept) == (is_valid, is_valid)
    if is_valid:
        assert str(root) == f"/home/{username}/namd_projects"
