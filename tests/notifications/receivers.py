"""A real local HTTP server that records the webhook calls it gets (test equipment)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebhookReceiver:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    location: str = ""


@contextmanager
def webhook_receiver(*, status: int = 200, location: str = "") -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 answering `status` to every POST and keeping its JSON body and headers."""
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.calls.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    receiver.status, receiver.location = status, location
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
