"""Opening one SSH connection to a login node: TCP, handshake, the pinned host key check, authentication.

Owns TCP_NODELAY, the classification of a failed connect or handshake into Unreachable/TransportTimeout/
HostKeyMismatch/AuthFailed, and reading a server's host key without logging in (first contact).
Must never know about pooling, retries, the session budget or the breaker (the pool's), nor where a
spec's secrets came from; no secret reaches an exception message.
"""

from __future__ import annotations

import socket
import time

import paramiko

from clusters.ssh.errors import AuthFailed, HostKeyMismatch, TransportError, TransportTimeout, Unreachable
from clusters.ssh.host_keys import PinnedKeysOnly
from clusters.ssh.spec import ConnectionSpec


def open_socket(host: str, port: int, timeout_s: float) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY. Raises Unreachable, TransportTimeout."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except TimeoutError as exc:
        raise TransportTimeout(
            f"TCP connect to {host}:{port} timed out after {timeout_s:g}s", during_connect=True
        ) from exc
    except socket.gaierror as exc:
        raise Unreachable(f"cannot resolve {host}") from exc
    except OSError as exc:
        raise Unreachable(f"cannot reach {host}:{port}: {exc.strerror or type(exc).__name__}") from exc
    # Nagle's algorithm otherwise adds ~40 ms to every command (LOCAL_CLUSTER.md: 48 ms vs 3 ms an exec).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def handshake_error(host: str, port: int, timeout_s: float, elapsed_s: float) -> TransportError:
    """What a failed handshake means: a TransportTimeout if it took about the whole timeout, else Unreachable."""
    # paramiko reports a banner/kex timeout and a dropped handshake with the same SSHException text,
    # so the elapsed time tells them apart.
    if elapsed_s >= timeout_s * 0.9:
        return TransportTimeout(f"SSH handshake with {host}:{port} timed out after {timeout_s:g}s", during_connect=True)
    return Unreachable(f"SSH handshake with {host}:{port} failed")


def fetch_host_key(host: str, port: int, timeout_s: float) -> str:
    """Read the server's host key without authenticating, as an OpenSSH public key line.

    For the admin's first-contact flow: show `fingerprint_sha256` of the result and pin it only once the
    admin confirmed it out of band. Raises Unreachable, TransportTimeout.
    """
    sock = open_socket(host, port, timeout_s)
    transport = paramiko.Transport(sock)
    started = time.monotonic()
    try:
        transport.banner_timeout = timeout_s
        transport.start_client(timeout=timeout_s)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise handshake_error(host, port, timeout_s, time.monotonic() - started) from exc
    finally:
        transport.close()
        sock.close()
    return f"{key.get_name()} {key.get_base64()}"


def open_client(spec: ConnectionSpec, pkey: paramiko.PKey | None, host_keys: list[paramiko.PKey]) -> paramiko.SSHClient:
    """TCP connect, pinned host key check and auth. Raises the TransportError of the failure."""
    timeout_s = spec.connect_timeout_s
    sock = open_socket(spec.host, spec.port, timeout_s)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(PinnedKeysOnly())
    # paramiko looks known hosts up as "[host]:port" unless the port is 22; the first pinned key's
    # type is the one paramiko asks the server for.
    entry_name = spec.host if spec.port == 22 else f"[{spec.host}]:{spec.port}"
    for key in host_keys:
        client.get_host_keys().add(entry_name, key.get_name(), key)
    started = time.monotonic()
    try:
        client.connect(
            spec.host,
            port=spec.port,
            username=spec.username,
            pkey=pkey,
            password=spec.password,
            sock=sock,
            timeout=timeout_s,
            banner_timeout=timeout_s,
            auth_timeout=timeout_s,
            channel_timeout=timeout_s,
            allow_agent=False,
            look_for_keys=False,
        )
    except HostKeyMismatch:
        client.close()
        sock.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        sock.close()
        raise HostKeyMismatch(
            f"{spec.host}:{spec.port} offered {exc.key.get_name()} {exc.key.fingerprint}, "
            "which differs from the pinned key"
        ) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        sock.close()
        raise AuthFailed(f"{spec.username}@{spec.host}:{spec.port} refused our credentials") from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        client.close()
        sock.close()
        raise handshake_error(spec.host, spec.port, timeout_s, time.monotonic() - started) from exc
    return client
