"""The plain description of one member's SSH session to one cluster.

Owns `ConnectionSpec`. Must never know Django, models or settings: the portal's gateway builds a spec
from a credential; secrets in it never appear in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open one member's SSH session to one cluster."""

    host: str
    port: int
    username: str
    pinned_host_keys: tuple[str, ...]  # OpenSSH public key lines, e.g. "ssh-ed25519 AAAA..."
    private_key: str | None = field(default=None, repr=False)  # OpenSSH/PEM private key text
    passphrase: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 10.0
    # Names the cluster for the shared session budget and breaker; empty means "host:port".
    cluster_key: str = ""
    # Concurrent sessions (channels) this member may hold on the connection; None: the pool's default.
    max_channels: int | None = None

    @property
    def resolved_cluster_key(self) -> str:
        """The key the budget and breaker use for this spec's cluster."""
        return self.cluster_key or f"{self.host}:{self.port}"
