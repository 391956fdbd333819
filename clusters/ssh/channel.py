"""One command on one open session channel: exec, stdin, draining both streams, the timeout, the output cap,
SIGTERM.

Owns the channel-level I/O of a command: exec of the line (with `command_line`'s stdin rule), a thread
feeding stdin, reading stdout and stderr together until the exit status (never more than the caller's
output cap: a `cat` of a link to /dev/zero must not fill the worker's memory), and terminating a timed-out
or too talkative remote command. Must never know how the channel was leased, whose command it is, or how the line was
built from argv.
"""

from __future__ import annotations

import select
import threading
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST

from clusters.ssh.argv import command_line
from clusters.ssh.errors import RemoteOutputTooLarge, TransportTimeout, Unreachable

_READ_CHUNK = 65536
# What one command may print (stdout and stderr together) unless its caller allows more: far above any
# SLURM answer or small file the portal reads, far below what would hurt a worker.
DEFAULT_MAX_OUTPUT_BYTES = 4 * 2**20


def exchange(
    channel: paramiko.Channel, line: str, stdin: bytes | None, deadline: float, max_output_bytes: int
) -> tuple[int, bytes, bytes]:
    """Exec `line`, feed stdin, drain stdout and stderr together, at most `max_output_bytes` of both.

    Raises TransportTimeout, Unreachable, RemoteOutputTooLarge (the caller closes the channel and stops the command).
    """
    try:
        channel.exec_command(command_line(line, has_stdin=bool(stdin)))
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise Unreachable("the connection was lost before the command started") from exc
    if stdin:
        # A thread, so that a command producing output before reading all its input cannot deadlock us.
        threading.Thread(target=_feed_stdin, args=(channel, stdin), name="ssh-stdin", daemon=True).start()
    out: list[bytes] = []
    err: list[bytes] = []
    received = 0
    # stdout and stderr share the channel's window: both must be drained or the remote side blocks.
    while True:
        while channel.recv_ready():
            out.append(channel.recv(_READ_CHUNK))
            received += len(out[-1])
            _check_output_size(received, max_output_bytes)
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(_READ_CHUNK))
            received += len(err[-1])
            _check_output_size(received, max_output_bytes)
        remaining_s = deadline - time.monotonic()
        if channel.eof_received or channel.closed:
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue
            if not channel.status_event.wait(max(0.0, remaining_s)):
                raise TransportTimeout("the command did not finish before its timeout", during_connect=False)
            if channel.exit_status == -1 and not channel.get_transport().is_active():
                raise Unreachable("the connection was lost during the command")
            return channel.exit_status, b"".join(out), b"".join(err)
        if remaining_s <= 0:
            raise TransportTimeout("the command did not finish before its timeout", during_connect=False)
        select.select([channel], [], [], remaining_s)


def _check_output_size(received: int, max_output_bytes: int) -> None:
    if received > max_output_bytes:
        raise RemoteOutputTooLarge(
            f"the command printed more than its cap of {max_output_bytes} bytes", max_bytes=max_output_bytes
        )


def terminate_remote(channel: paramiko.Channel) -> None:
    """SIGTERM to a timed-out or too talkative remote command (RFC 4254 §6.9 "signal", honoured by OpenSSH >= 7.9).

    Closing the channel alone leaves a silent command such as `sleep` running on the login node until it
    ends by itself. paramiko 5.1 has no public call for this request, hence its private sender.
    """
    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string("TERM")
    try:
        channel.transport._send_user_message(message)
    except (OSError, EOFError, paramiko.SSHException):
        # The connection is already gone: so is the command's session.
        return


def _feed_stdin(channel: paramiko.Channel, data: bytes) -> None:
    try:
        channel.sendall(data)
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        # The command exited or closed stdin before reading it all, or we closed the channel on timeout.
        return
