"""What every page shares: the Content-Security-Policy, the error pages, password change, static files only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.test import Client

from tests.factories import MEMBER_PASSWORD

pytestmark = pytest.mark.django_db
STATIC = Path(__file__).resolve().parents[2] / "frontend" / "static"
TEMPLATES = Path(__file__).resolve().parents[2] / "frontend" / "templates"


def test_pages_carry_a_self_only_content_security_policy_and_the_admin_does_not(member_client, lab_admin) -> None:
    policy = member_client.get("/account/tokens/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    admin = Client()
    admin.force_login(lab_admin)
    assert "Content-Security-Policy" not in admin.get("/admin/")


def test_no_template_has_inline_script_style_or_handler_attributes() -> None:
    """The CSP would block them in the browser: keep every template free of them."""
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path}"
        assert not re.search(r"\sstyle=\"", text), f"style attribute in {path}"
        assert not re.search(r"\son[a-z]+=\"", text), f"on* handler in {path}"
        assert not re.search(r"\shx-on", text), f"hx-on in {path}"
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f"external URL in {path}"


def test_vendored_files_match_their_checksums() -> None:
    vendor = STATIC / "vendor"
    lines = (vendor / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert {"htmx/htmx.min.js", "uplot/uPlot.iife.min.js", "uplot/uPlot.min.css"} <= set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_an_unknown_page_gets_the_portals_404(member_client) -> None:
    response = member_client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b'aria-label="Main"' in response.content


def test_the_500_page_renders_without_a_request() -> None:
    """Django renders 500.html with no context at all: the layout must not need one."""
    html = render_to_string("500.html")
    assert "Something broke" in html
    assert "portal.css" in html


def test_password_change_checks_the_old_password_and_the_new_ones(member_client, member) -> None:
    response = member_client.post(
        "/account/password/", {"old_password": "wrong", "new_password1": "x", "new_password2": "y"}
    )
    assert response.status_code == 200
    assert b'aria-invalid="true"' in response.content
    assert b"Your old password was entered incorrectly" in response.content
    new = "a longer passphrase for alice 7"
    response = member_client.post(
        "/account/password/", {"old_password": MEMBER_PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(new)
    assert member_client.get("/account/password/done/").status_code == 200
