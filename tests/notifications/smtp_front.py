"""A TCP front for the real local SMTP server that can hold a connection silent (test equipment).

While `holding` is set, a new connection gets no greeting: the portal's SMTP client waits in the middle of
its send. Otherwise each connection is relayed byte for byte to the real server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class SmtpFront:
    port: int
    holding: threading.Event = field(default_factory=threading.Event)
    held: list[socket.socket] = field(default_factory=list)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextmanager
def smtp_front(upstream: tuple[str, int]) -> Iterator[SmtpFront]:
    listener = socket.create_server(("127.0.0.1", 0))
    front = SmtpFront(port=listener.getsockname()[1])
    front.holding.set()
    stopped = threading.Event()

    def accept() -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if front.holding.is_set():
                front.held.append(client)  # silent: no greeting, the client waits
                continue
            server = socket.create_connection(upstream, timeout=10)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        stopped.set()
        listener.close()
        for held in front.held:
            held.close()
