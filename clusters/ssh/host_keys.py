"""Pinned host keys: reading OpenSSH public key lines, their fingerprints, and the pin-only policy.

Owns how a pinned key line becomes a paramiko key, the "SHA256:..." fingerprint the admin compares, the
rule of at most one pin per key type, and the RejectPolicy that names the key a server offered.
Must never know where pins are stored or how a first-contact key gets accepted (the portal's services).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import paramiko

from clusters.ssh.errors import HostKeyMismatch
from clusters.ssh.spec import ConnectionSpec


def parse_public_key_line(line: str) -> paramiko.PKey:
    """Parse "type base64 [comment]". Raises ValueError."""
    parts = line.strip().split()
    if len(parts) < 2:
        raise ValueError("a public key line is 'type base64 [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return paramiko.PKey.from_type_string(parts[0], blob)
    except (ValueError, paramiko.SSHException) as exc:
        raise ValueError(f"unreadable {parts[0]!r} public key") from exc


def fingerprint_sha256(key_line: str) -> str:
    """The OpenSSH-style "SHA256:..." fingerprint of a public key line. Raises ValueError."""
    return parse_public_key_line(key_line).fingerprint


class PinnedKeysOnly(paramiko.RejectPolicy):
    """RejectPolicy that says which key was offered; paramiko's own message names no fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyMismatch(f"{hostname} offered {key.get_name()} {key.fingerprint}, which is not pinned")


def pin_replacing_its_type(pinned_lines: Sequence[str], new_line: str) -> tuple[str, ...]:
    """The pins with `new_line` added and any pin of its key type dropped (a rotated key replaces the old one:
    two pins of one type would refuse every connection). Raises ValueError for an unreadable line."""
    new_type = parse_public_key_line(new_line).get_name()
    kept = []
    for line in pinned_lines:
        try:
            if parse_public_key_line(line).get_name() == new_type:
                continue
        except ValueError:
            continue  # an unreadable pin could only ever refuse connections
        kept.append(line.strip())
    return (*kept, new_line.strip())


def pinned_host_keys(spec: ConnectionSpec) -> list[paramiko.PKey]:
    """The spec's pinned keys, at most one per key type. Raises HostKeyMismatch."""
    if not spec.pinned_host_keys:
        raise HostKeyMismatch(f"no host key is pinned for {spec.host}:{spec.port}; pin one first")
    keys: list[paramiko.PKey] = []
    seen_types: set[str] = set()
    for line in spec.pinned_host_keys:
        try:
            key = parse_public_key_line(line)
        except ValueError as exc:
            raise HostKeyMismatch(f"a pinned host key for {spec.host}:{spec.port} is unreadable") from exc
        # HostKeys holds one key per type and host; a second one would silently replace the first.
        if key.get_name() in seen_types:
            raise HostKeyMismatch(f"two pinned {key.get_name()} keys for {spec.host}:{spec.port}; pin one per type")
        seen_types.add(key.get_name())
        keys.append(key)
    return keys
