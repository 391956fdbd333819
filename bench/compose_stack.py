"""The deployment, run: docker-compose.yml built and brought up on this machine, with host networking only.

Used by the compose test (`make compose-test`, tests/deployment/test_compose_stack.py) and `bench.scaleout`.
`ComposeStack` starts the portal's own Docker engine when none answers (scripts/compose/engine: its own
socket and data root, `--bridge=none --iptables=false`), makes the local Debian 12 base image when missing
(scripts/compose/base-image), writes an env file of its own (fresh secrets, free 127.0.0.1 ports, a
self-signed certificate for `localhost`), builds the images with `--network host`, and runs the production
compose file with deploy/compose.hostnet.yml on top under its own project name. `down` removes what it made
by name: its containers, its volumes, its env and certificate; the images stay (the next build is quicker).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
import time
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.private_stack import PROJECT_DIR, free_port

VAR = Path(os.environ.get("PORTAL_VAR", "/var/lib/namd-portal"))
ENGINE = PROJECT_DIR / "scripts" / "compose" / "engine"
BASE_IMAGE_SCRIPT = PROJECT_DIR / "scripts" / "compose" / "base-image"
BASE_IMAGE = "namd-portal-base:bookworm"
DOCKER_HOST = f"unix://{VAR / 'docker' / 'engine.sock'}"
LOCALCLUSTER_STATE = VAR / "localcluster"
SITE_HOST = "localhost"
COMPOSE_FILES = ("docker-compose.yml", "deploy/compose.hostnet.yml")


class StackError(RuntimeError):
    """A compose or docker command failed; carries its output."""


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": DOCKER_HOST}


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` and 127.0.0.1 (the proxy's), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE_HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(SITE_HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o644)  # read by the proxy's container user; a throwaway test key
    return cert_path, key_path


class ComposeStack:
    def __init__(self, project: str = "npcomposetest", *, image_tag: str = "compose-test") -> None:
        self.project = project
        self.image_tag = image_tag
        self.folder = VAR / "compose" / project
        self.env_file = self.folder / "stack.env"
        self.stack_file = self.folder / "stack.yml"
        self.ports: dict[str, int] = {}

    # -- set-up ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Engine, base image, env file: everything `build` and `up` need."""
        run([str(ENGINE), "start"], timeout_s=120)
        run([str(BASE_IMAGE_SCRIPT), BASE_IMAGE], timeout_s=900)
        self.remove_leftovers()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in ("DB", "REDIS", "WEB", "HTTP", "HTTPS")}
        cert, key = write_certificate(self.folder)
        values = {
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
            "PORTAL_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
            "PORTAL_DB_PASSWORD": secrets.token_urlsafe(24),
            "PORTAL_ALLOWED_HOSTS": SITE_HOST,
            "PORTAL_CSRF_TRUSTED_ORIGINS": f"https://{SITE_HOST}:{self.ports['HTTPS']}",
            "PORTAL_BASE_URL": f"https://{SITE_HOST}:{self.ports['HTTPS']}",
            "PORTAL_TLS_CERT": str(cert),
            "PORTAL_TLS_KEY": str(key),
            "PORTAL_PYTHON_IMAGE": BASE_IMAGE,
            "PORTAL_BASE_IMAGE": BASE_IMAGE,
            "PORTAL_IMAGE_TAG": self.image_tag,
            **{f"PORTAL_COMPOSE_{name}_PORT": str(port) for name, port in self.ports.items()},
        }
        self.env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        self.env_file.chmod(0o600)
        self.write_stack_file()

    def write_stack_file(self) -> None:
        """docker-compose.yml with deploy/compose.hostnet.yml on top, as one file, less the published ports.

        A container on the host's network cannot publish ports (docker refuses the pair) and an override
        cannot remove a key in compose 1.29, so the merged file drops `ports` where network_mode is host.
        """
        files = [arg for name in COMPOSE_FILES for arg in ("-f", str(PROJECT_DIR / name))]
        merged = yaml.safe_load(run(["docker-compose", "--env-file", str(self.env_file), *files, "config"]))
        for service in merged["services"].values():
            if service.get("network_mode") == "host":
                service.pop("ports", None)
        self.stack_file.write_text(yaml.safe_dump(merged, sort_keys=False))
        self.stack_file.chmod(0o600)  # the secrets are written into it

    @property
    def base_url(self) -> str:
        return f"https://{SITE_HOST}:{self.ports['HTTPS']}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.folder / "fullchain.pem"))

    # -- compose --------------------------------------------------------------------------------------
    def compose_argv(self) -> list[str]:
        return ["docker-compose", "--env-file", str(self.env_file), "-p", self.project, "-f", str(self.stack_file)]

    def compose(self, *args: str, timeout_s: float = 600, check: bool = True, stdin: bytes | None = None) -> str:
        return run([*self.compose_argv(), *args], timeout_s=timeout_s, check=check, stdin=stdin)

    def build(self) -> None:
        self.compose("build", "--quiet", timeout_s=1800)

    def up(self, *services: str, scale: dict[str, int] | None = None, timeout_s: float = 600) -> None:
        scales = [arg for name, count in (scale or {}).items() for arg in ("--scale", f"{name}={count}")]
        try:
            self.compose("up", "-d", "--no-build", *scales, *services, timeout_s=timeout_s)
        except StackError as exc:
            raise StackError(f"{exc}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """Each of the project's containers: its state, its health check's last answers, its last log lines."""
        lines = []
        for container in self.leftovers()["containers"]:
            state = json.loads(
                run(["docker", "inspect", "--format", "{{json .State}}", container], check=False) or "{}"
            )
            name = run(["docker", "inspect", "--format", "{{.Name}}", container], check=False).strip()
            checks = [
                (entry.get("ExitCode"), entry.get("Output", "")[-400:])
                for entry in (state.get("Health") or {}).get("Log", [])[-2:]
            ]
            result = subprocess.run(
                ["docker", "logs", "--tail", "40", container],
                env=docker_env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            log = (result.stdout + result.stderr).decode(errors="replace")[-3000:]
            lines.append(f"--- {name} {state.get('Status')} exit={state.get('ExitCode')} health={checks}\n{log}")
        return "\n".join(lines)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def health(self, container: str) -> str:
        state = json.loads(run(["docker", "inspect", "--format", "{{json .State}}", container]))
        return (state.get("Health") or {}).get("Status") or state["Status"]

    def wait_healthy(self, *services: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            states = {c: self.health(c) for service in services for c in self.containers(service)}
            running = bool(states) and all(state in ("healthy", "running") for state in states.values())
            if running and all(self.health(c) == "healthy" for c in states if self._has_healthcheck(c)):
                return
            if time.monotonic() > deadline:
                raise StackError(f"not healthy after {timeout_s:.0f} s: {states}\n{self.logs(*services)[-4000:]}")
            time.sleep(1)

    def _has_healthcheck(self, container: str) -> bool:
        config = json.loads(run(["docker", "inspect", "--format", "{{json .Config.Healthcheck}}", container]))
        return bool(config)

    def manage(self, *argv: str, as_root: bool = False, mounts: tuple[str, ...] = ()) -> str:
        """`manage.py ARGV` in a one-off container of the portal image (the migrate service's), its stdout."""
        options = ["-u", "root"] if as_root else []
        for mount in mounts:
            options += ["-v", mount]
        return self.compose("run", "--rm", "--no-deps", "-T", *options, "migrate", "python", "manage.py", *argv)

    def register_local_cluster(
        self, *usernames: str, slug: str = "localcluster", name: str = "", port: int = 2222
    ) -> int:
        """The local SLURM cluster as a profile of the containerised portal, with these members' keys: its id."""
        said = self.manage(
            "register_local_cluster",
            *usernames,
            "--host=127.0.0.1",
            f"--port={port}",
            "--host-key-pub=/localcluster/ssh_host_ed25519_key.pub",
            "--keys-dir=/localcluster/keys",
            f"--slug={slug}",
            f"--name={name or 'Local SLURM cluster'}",
            as_root=True,
            mounts=(f"{LOCALCLUSTER_STATE}:/localcluster:ro",),
        )
        return int(said.rsplit("id", 1)[1].strip())

    def member(self, username: str) -> str:
        """A member (a superuser of the containerised portal) with an API token: the token's secret."""
        run(
            [
                *self.compose_argv(),
                *("run", "--rm", "--no-deps", "-T", "-e", "DJANGO_SUPERUSER_PASSWORD", "migrate"),
                *("python", "manage.py", "createsuperuser", "--noinput", "--username", username),
                *("--email", f"{username}@example.org"),
            ],
            env_extra={"DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16)},
        )
        return self.manage("create_api_token", username, "--name", "compose test", "--days", "1").strip()

    def logs(self, *services: str) -> str:
        """What the services' containers wrote (stdout and stderr), as docker keeps it."""
        texts = []
        for service in services:
            for container in self.containers(service):
                result = subprocess.run(
                    ["docker", "logs", container], env=docker_env(), capture_output=True, timeout=120, check=False
                )
                texts.append(result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace"))
        return "".join(texts)

    def down(self) -> None:
        """Remove this project's containers, networks and volumes, and its env and certificate files."""
        if self.stack_file.exists():
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False, timeout_s=300)
        for path in (self.env_file, self.stack_file, self.folder / "fullchain.pem", self.folder / "privkey.pem"):
            path.unlink(missing_ok=True)

    def remove_leftovers(self) -> None:
        """What an earlier run of this project left (it was killed before its `down`): removed by label."""
        found = self.leftovers()
        if found["containers"]:
            run(["docker", "rm", "--force", "--volumes", *found["containers"]], timeout_s=120)
        for kind in ("volumes", "networks"):
            if found[kind]:
                run(["docker", kind[:-1], "rm", *found[kind]], timeout_s=120, check=False)

    def leftovers(self) -> dict[str, list[str]]:
        """What docker still holds under this project's name (nothing, after `down`)."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": run(["docker", "ps", "-aq", "--filter", label]).split(),
            "volumes": run(["docker", "volume", "ls", "-q", "--filter", label]).split(),
            "networks": run(["docker", "network", "ls", "-q", "--filter", label]).split(),
        }


def run(
    argv: list[str],
    *,
    timeout_s: float = 300,
    check: bool = True,
    stdin: bytes | None = None,
    env_extra: dict[str, str] | None = None,
) -> str:
    result = subprocess.run(
        argv,
        cwd=PROJECT_DIR,
        env={**docker_env(), **(env_extra or {})},
        input=stdin,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    if check and result.returncode != 0:
        raise StackError(
            f"{' '.join(argv[:8])}... exited {result.returncode}:\n"
            f"{result.stdout.decode(errors='replace')[-3000:]}\n{result.stderr.decode(errors='replace')[-3000:]}"
        )
    return result.stdout.decode(errors="replace")
