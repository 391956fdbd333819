"""The test suite's one way to talk to scripts/localcluster: run it, read its facts, add a user."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

LOCALCLUSTER = Path(__file__).resolve().parents[1] / "scripts" / "localcluster" / "localcluster"


def localcluster(*args: str) -> str:
    """Run the local cluster script; a failure fails the test with the script's stderr."""
    result = subprocess.run([str(LOCALCLUSTER), *args], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"localcluster {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def cluster_facts() -> dict[str, str]:
    """LOCALCLUSTER_HOST, _PORT, _HOST_KEY_PUB, _KEYS_DIR and _STATE, as `localcluster env` prints them."""
    return dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)


def add_cluster_user(name: str) -> int:
    """Create the cluster user if missing (idempotent); returns its uid."""
    return int(localcluster("add-user", name).strip())


def host_key_line(facts: dict[str, str]) -> str:
    """The pinned host key as one OpenSSH line without its comment."""
    return " ".join(Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().split()[:2])
