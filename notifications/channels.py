"""The two ways a notification leaves the portal: a mail through Django's email backend, a webhook POST.

Each send is bounded in time (SMTP and HTTP timeouts well under a delivery's lease) and reports how it
went as a `SendFailure` with a stable code, retryable or not. The webhook connects to the address its
URL was checked at (`webhook_urls`), speaks TLS to the host's name, and never follows a redirect. Must
never know about jobs, preferences or the outbox.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import smtplib
import socket
import ssl
from typing import Any

from django.core.mail import EmailMessage, get_connection

from notifications.webhook_urls import WebhookTarget

SMTP_TIMEOUT_S = 20
WEBHOOK_TIMEOUT_S = 10
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class SendFailure(Exception):
    """A send that did not happen: its code, and whether trying again later may work."""

    def __init__(self, code: str, *, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retryable = retryable


def message_id(idempotency_key: str) -> str:
    """The same Message-ID for every try of one notification: a receiver can drop a repeat."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@namd-portal>"


def send_email(*, to: str, subject: str, body: str, sender: str, idempotency_key: str) -> None:
    """One mail through the configured backend. Raises SendFailure."""
    mail = EmailMessage(
        subject=subject,
        body=body,
        from_email=sender,
        to=[to],
        headers={"Message-ID": message_id(idempotency_key), "X-Portal-Idempotency-Key": idempotency_key},
        connection=get_connection(timeout=SMTP_TIMEOUT_S),
    )
    try:
        mail.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendFailure("EMAIL_RECIPIENT_REFUSED", retryable=False) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise SendFailure("EMAIL_AUTH_FAILED", retryable=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailure("EMAIL_UNAVAILABLE", retryable=True) from exc


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate checked against the host's name."""

    def __init__(self, target: WebhookTarget, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a checked address (only for a host an admin allowed http to)."""

    def __init__(self, target: WebhookTarget, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def send_webhook(target: WebhookTarget, payload: dict[str, Any], *, idempotency_key: str) -> None:
    """POST the JSON payload; 2xx is sent, a redirect or a refusal is final, an outage is tried again.

    Raises SendFailure (WEBHOOK_UNREACHABLE, WEBHOOK_SERVER_ERROR, WEBHOOK_REDIRECT_REFUSED, WEBHOOK_REJECTED).
    """
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout=WEBHOOK_TIMEOUT_S)
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "namd-portal-notifications",
        "X-Portal-Idempotency-Key": idempotency_key,
    }
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise SendFailure("WEBHOOK_UNREACHABLE", retryable=True) from exc
    finally:
        connection.close()
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise SendFailure("WEBHOOK_REDIRECT_REFUSED", retryable=False)
    if status in RETRYABLE_HTTP:
        raise SendFailure("WEBHOOK_SERVER_ERROR", retryable=True)
    raise SendFailure("WEBHOOK_REJECTED", retryable=False)
