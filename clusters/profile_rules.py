"""What an admin may write in the profile fields that run on members' accounts: launch commands, module
lines, container images. One rule each, used by the models' validators (admin forms, loaders) and again by
the batch script when it renders (a row saved before a rule tightened is still refused).

A launch command is plain words and `{placeholders}`: no shell text at all (`$`, quotes, backticks, `;|&<>`,
globbing, redirection), and no shell program (`bash -c ...` would run anything). A module line is
`module load NAME[/VERSION] ...` only: no `module use` (it would load an admin's own modulefiles), no other
subcommand, no path. Pure: no Django, no I/O.
"""

from __future__ import annotations

import re

LAUNCH_PLACEHOLDERS = frozenset({"cores", "gpus", "devices", "image", "config"})
PLACEHOLDER_RE = re.compile(r"\{([a-z]+)\}", re.ASCII)
# A word once its placeholders are taken out: letters, digits and _ . / + = : , @ % - only.
PLAIN_WORD_RE = re.compile(r"[A-Za-z0-9_./+=:,@%-]*", re.ASCII)
# Programs that run a command line of their own, refused as any word (`srun bash -c ...` too); bash builtins that
# do the same, refused as the first word (`apptainer exec` is a subcommand, not the builtin).
SHELL_PROGRAMS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "env", "xargs"})
SHELL_BUILTINS = frozenset({"exec", "eval", "source", "command", "builtin"})
MODULE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*", re.ASCII)
CONTAINER_IMAGE_RE = re.compile(r"/[A-Za-z0-9_./-]+\.sif", re.ASCII)
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")  # a newline would start a second command


def launch_command_problems(command: str) -> list[str]:
    """Why a launch command is refused (empty when it is fine)."""
    problems = ["The command is one line with no control characters."] if CONTROL_CHARS_RE.search(command) else []
    names = PLACEHOLDER_RE.findall(command)
    unknown = sorted(set(names) - LAUNCH_PLACEHOLDERS)
    if unknown:
        problems.append(f"Unknown placeholders: {', '.join(unknown)} (use {', '.join(sorted(LAUNCH_PLACEHOLDERS))}).")
    if "config" not in names:
        problems.append("The command must contain {config}, where the NAMD config goes.")
    words = command.split()
    for position, word in enumerate(words):
        plain = PLACEHOLDER_RE.sub("", word)
        if not PLAIN_WORD_RE.fullmatch(plain):
            problems.append(f"{word[:40]!r} is not a plain word: use letters, digits, _ . / + = : , @ % - only.")
        elif plain.rsplit("/", 1)[-1] in SHELL_PROGRAMS or (position == 0 and plain in SHELL_BUILTINS):
            problems.append(f"{word[:40]!r} would run a shell or another command line; name the program itself.")
    if not words:
        problems.append("Give the launch command, e.g. 'srun namd2 +p{cores} {config}'.")
    return problems


def module_line_problems(line: str) -> list[str]:
    """Why one module line is refused (empty when it is fine)."""
    words = line.split()
    if CONTROL_CHARS_RE.search(line.strip()):
        return [f"{line[:60]!r}: one line, with no control characters."]
    if len(words) < 3 or words[:2] != ["module", "load"]:
        return [f"{line[:60]!r}: only 'module load NAME/VERSION ...' lines are allowed."]
    bad = [word for word in words[2:] if not MODULE_NAME_RE.fullmatch(word)]
    return [f"{word[:40]!r} is not a module name like 'namd/3.0' (no paths, options or shell text)." for word in bad]


def module_lines_problems(text: str) -> list[str]:
    """Why a block of module lines (one a line; blank lines ignored) is refused."""
    return [problem for line in text.splitlines() if line.strip() for problem in module_line_problems(line.strip())]


def container_image_problems(image: str) -> list[str]:
    if image and not CONTAINER_IMAGE_RE.fullmatch(image):
        return ["The image is an absolute path to a .sif file of letters, digits, '_', '.', '-', '/'."]
    return []
