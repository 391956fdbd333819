"""A member's client of the portal's JSON API over real HTTP (stdlib only), with a client's patience:
a request that meets a server in trouble (connection refused or reset, 5xx, 429) is tried again with
backoff and jitter until it gets an answer or its deadline passes.
"""

from __future__ import annotations

import json
import random
import ssl
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

REQUEST_TIMEOUT_S = 30.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class GaveUp(Exception):
    """The server never answered in time."""


def is_trouble(status: int) -> bool:
    """What a client tries again: the server is busy, restarting, or lost its database or broker."""
    return status == 429 or status >= 500


class MemberClient:
    def __init__(
        self, base_url: str, token: str, *, rng: random.Random, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.rng = rng
        self.ssl_context = ssl_context  # https with a certificate of the caller's own (the compose stack's)
        self.retries = 0  # requests tried again (trouble or no connection)

    def _once(self, method: str, path: str, *, body: bytes | None, content_type: str | None) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S, context=self.ssl_context) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return Answer(status, json.loads(raw) if raw else None)
        except json.JSONDecodeError:
            return Answer(status, raw.decode(errors="replace")[:300])

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        deadline: float,
    ) -> Answer:
        """The first answer that is not trouble. Raises GaveUp after `deadline` (time.monotonic())."""
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                answer = self._once(method, path, body=body, content_type=content_type)
                if not is_trouble(answer.status):
                    return answer
                trouble = f"HTTP {answer.status}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                trouble = repr(exc)
            if time.monotonic() + backoff > deadline:
                raise GaveUp(f"{method} {path}: still {trouble} at the deadline")
            self.retries += 1
            time.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def post_json(self, path: str, payload: dict[str, Any] | None, *, deadline: float) -> Answer:
        body = json.dumps(payload).encode() if payload is not None else None
        return self.request("POST", path, body=body, content_type="application/json", deadline=deadline)

    def post_file(self, path: str, field: str, filename: str, content: bytes, *, deadline: float) -> Answer:
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\n".encode(),
                f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'.encode(),
                b"Content-Type: application/octet-stream\r\n\r\n",
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        return self.request(
            "POST", path, body=body, content_type=f"multipart/form-data; boundary={boundary}", deadline=deadline
        )

    def get(self, path: str, *, deadline: float) -> Answer:
        return self.request("GET", path, deadline=deadline)
