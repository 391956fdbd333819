"""The local SMTP server of the demo and the tests: aiosmtpd on 127.0.0.1, every message kept as a .eml file.

    python scripts/local_smtp.py --port 51025 --store /var/lib/namd-portal/mail

Each message accepted (the end of DATA) is written whole to `<store>/<time>-<n>.eml` (a temporary name,
then a rename: a reader never sees half a message), with the envelope's sender and recipients added as
`X-Envelope-From`/`X-Envelope-To`. Test and demo equipment: it relays nothing and asks for no login.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class StoreHandler:
    """Keeps every message as a file."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self.counter):06d}.eml"
        envelope_lines = (
            f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        partial = self.store / f".{name}.part"
        partial.write_bytes(envelope_lines + envelope.original_content)
        partial.rename(self.store / name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    options = parser.parse_args()
    options.store.mkdir(parents=True, exist_ok=True)
    controller = Controller(StoreHandler(options.store), hostname="127.0.0.1", port=options.port)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
