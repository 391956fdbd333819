"""A slow login node: a second sshd in front of the local SLURM cluster that answers every command late.

Same users, keys, host key and cluster as the local cluster's own sshd (scripts/localcluster), on another
127.0.0.1 port, with a ForceCommand that sleeps the delay before it runs what the client asked (a command
through bash, or the sftp server): every exec and every SFTP session starts that late, as on a login node
that is slow to answer. The delay is read from a file at each command (`set_delay`). The portal registers
it as a second cluster profile. Test equipment for `bench.scaleout`; it never touches the local cluster's
own sshd.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench.compose_stack import LOCALCLUSTER_STATE
from bench.private_stack import free_port

SFTP_SERVER = "/usr/lib/openssh/sftp-server"

WRAPPER = """#!/bin/bash
# Runs instead of every command of this sshd: late, then what the client asked.
sleep "$(cat {delay_file} 2>/dev/null || echo 0)"
case "$SSH_ORIGINAL_COMMAND" in
    sftp|internal-sftp|{sftp_server}) exec {sftp_server} ;;
    "") echo "no command" >&2; exit 1 ;;
esac
exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"
"""


class SlowSshd:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="np-slow-sshd-"))
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SlowSshd:
        self.folder.chmod(0o755)
        wrapper = self.folder / "late"
        self.set_delay(self.delay_s)
        wrapper.write_text(WRAPPER.format(delay_file=self.delay_file, sftp_server=SFTP_SERVER))
        wrapper.chmod(0o755)
        config = (LOCALCLUSTER_STATE / "sshd_config").read_text()
        config = re.sub(r"(?m)^Port .*$", f"Port {self.port}", config)
        config = re.sub(r"(?m)^PidFile .*$", f"PidFile {self.folder / 'sshd.pid'}", config)
        config = re.sub(r"(?m)^Subsystem .*$", f"Subsystem sftp {SFTP_SERVER}", config)
        config += f"\nForceCommand {wrapper}\nMaxSessions 64\nMaxStartups 64:30:128\n"
        config_path = self.folder / "sshd_config"
        config_path.write_text(config)
        subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config_path)], check=True, capture_output=True)
        self.process = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(config_path)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "sshd.log").open("wb"),
        )
        deadline = time.monotonic() + 10
        while not self._listening():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the slow sshd did not start: {(self.folder / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    @property
    def delay_file(self) -> Path:
        return self.folder / "delay_s"

    def set_delay(self, delay_s: float) -> None:
        """From the next command on, answer `delay_s` late (0: as quickly as the cluster's own sshd)."""
        self.delay_file.write_text(f"{delay_s:g}\n")
        self.delay_file.chmod(0o644)

    def _listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
