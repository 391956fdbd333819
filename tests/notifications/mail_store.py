"""The local SMTP server's store (scripts/services `smtp`, scripts/local_smtp.py): every mail as a .eml file."""

from __future__ import annotations

import email
import os
import smtplib
from email.message import Message
from pathlib import Path

import pytest
from django.conf import settings

MAIL_DIR = Path(os.environ.get("PORTAL_VAR", "/var/lib/namd-portal")) / "mail"


def require_local_smtp() -> None:
    """The real local SMTP server the worker sends to must be up (`make services` starts it)."""
    try:
        smtplib.SMTP(settings.ENV.email_host, settings.ENV.email_port, timeout=3).quit()
    except OSError as exc:
        pytest.fail(f"the local SMTP server is not up ({exc}): run `scripts/services start smtp`")


def mails_to(address: str) -> list[Message]:
    """Every stored mail whose envelope went to `address`."""
    found = []
    for path in sorted(MAIL_DIR.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if message["X-Envelope-To"] == address:
            found.append(message)
    return found
