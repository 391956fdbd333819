"""The three ways a member gives the portal a cluster login, as forms: upload a private key, let the portal
generate one, or a password. Each saves through the clusters services (which check and encrypt).

Secret fields never render a value: a form shown again after an error is empty there, so a pasted key,
a passphrase or a password never travels back to the browser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import User
from clusters import services
from clusters.models import ClusterCredential, ClusterProfile
from clusters.ssh.keys import MAX_KEY_TEXT_LENGTH
from portal.errors import InvalidInput

UPLOAD, GENERATE, PASSWORD = "upload", "generate", "password"


class SecretTextarea(forms.Textarea):
    """A textarea that never renders the text it was given."""

    def format_value(self, value: Any) -> None:
        return None


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


class CredentialForm(forms.Form):
    """What every way has in common: the login name on the cluster, and where a service error belongs."""

    method = ""
    service: Callable[..., ClusterCredential]  # each way's clusters service
    # A service's error code names the field it concerns; anything else is shown above the form.
    FIELD_BY_CODE = {"REMOTE_USERNAME_INVALID": "remote_username"}

    remote_username = forms.CharField(
        max_length=32,
        label="Cluster username",
        help_text="Your login name on this cluster, e.g. alice.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, profile_id: int, **kwargs: Any) -> None:
        # Every cluster on the page has its own three forms: the ids must not repeat.
        super().__init__(*args, auto_id=f"cluster-{profile_id}-{self.method}-%s", **kwargs)

    def save(self, *, user: User, profile: ClusterProfile) -> ClusterCredential:
        """Store the credential through this way's service (replacing any earlier one). Raises InvalidInput."""
        remote_username = self.cleaned_data["remote_username"]
        return self.service(user=user, profile=profile, remote_username=remote_username, **self.secrets())

    def secrets(self) -> dict[str, Any]:
        """This way's own arguments to its service."""
        return {}

    def add_service_error(self, exc: InvalidInput) -> None:
        """Show a service's refusal next to the field it concerns, with its code."""
        self.add_error(self.FIELD_BY_CODE.get(exc.code), ValidationError(exc.user_message, code=exc.code))


class UploadKeyForm(CredentialForm):
    method = UPLOAD
    service = staticmethod(services.save_key_credential)
    FIELD_BY_CODE = {
        **CredentialForm.FIELD_BY_CODE,
        **dict.fromkeys(("KEY_FORMAT_INVALID", "KEY_TOO_WEAK", "KEY_TYPE_UNSUPPORTED"), "private_key"),
        **dict.fromkeys(("KEY_PASSPHRASE_REQUIRED", "KEY_PASSPHRASE_WRONG", "KEY_PASSPHRASE_UNEXPECTED"), "passphrase"),
    }

    private_key = forms.CharField(
        required=False,
        label="Private key",
        help_text="Paste it (OpenSSH or PEM form), or choose the key file below.",
        widget=SecretTextarea(attrs={"rows": 5, "autocomplete": "off", "spellcheck": "false"}),
    )
    private_key_file = forms.FileField(
        required=False, label="Or the private key file", help_text="e.g. ~/.ssh/id_ed25519 (not the .pub file)."
    )
    passphrase = forms.CharField(
        required=False, strip=False, label="Passphrase", help_text="Only if the key has one.", widget=_secret_input()
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("private_key_file")
        text = cleaned.get("private_key", "")
        if upload is not None and not text:
            text = self._read_key_file(upload)
        if not text and "private_key" not in self.errors:
            self.add_error(
                "private_key", ValidationError("Paste the private key or choose its file.", code="KEY_FORMAT_INVALID")
            )
        cleaned["key_text"] = text
        return cleaned

    def _read_key_file(self, upload: Any) -> str:
        if upload.size > MAX_KEY_TEXT_LENGTH:
            self.add_error(
                "private_key", ValidationError("This file is too large to be a private key.", code="KEY_FORMAT_INVALID")
            )
            return ""
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            self.add_error(
                "private_key",
                ValidationError("This file is not a text private key (OpenSSH or PEM).", code="KEY_FORMAT_INVALID"),
            )
            return ""

    def secrets(self) -> dict[str, Any]:
        return {"private_key": self.cleaned_data["key_text"], "passphrase": self.cleaned_data["passphrase"] or None}


class GenerateKeyForm(CredentialForm):
    method = GENERATE
    service = staticmethod(services.generate_key_credential)

    passphrase = forms.CharField(
        required=False,
        strip=False,
        label="Passphrase (optional)",
        help_text="Protects the new key; the portal keeps it encrypted with the key.",
        widget=_secret_input(),
    )

    def secrets(self) -> dict[str, Any]:
        return {"passphrase": self.cleaned_data["passphrase"] or None}


class PasswordForm(CredentialForm):
    method = PASSWORD
    service = staticmethod(services.save_password_credential)
    FIELD_BY_CODE = {**CredentialForm.FIELD_BY_CODE, "PASSWORD_INVALID": "password"}

    password = forms.CharField(strip=False, label="Cluster password", widget=_secret_input())

    def secrets(self) -> dict[str, Any]:
        return {"password": self.cleaned_data["password"]}


CREDENTIAL_FORMS: dict[str, type[CredentialForm]] = {
    form.method: form for form in (UploadKeyForm, GenerateKeyForm, PasswordForm)
}
