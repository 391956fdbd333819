"""SSH private keys a member gives the portal: checking them, deriving the public half, making new ones.

Pure functions over key text; no I/O, no Django. Errors carry stable codes and never the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

MAX_KEY_TEXT_LENGTH = 20_000
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """A key the portal cannot use; `code` is stable."""

    code = "KEY_FORMAT_INVALID"

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckedKey:
    public_key: str  # one OpenSSH line, e.g. "ssh-ed25519 AAAA... portal"
    key_type: str


@dataclass(frozen=True)
class GeneratedKey:
    private_key: str = field(repr=False)
    public_key: str


def _load(text: str, passphrase: str | None):
    data = text.strip().encode() + b"\n"
    password = passphrase.encode() if passphrase else None
    loader = (
        serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else serialization.load_pem_private_key
    )
    try:
        return loader(data, password=password)
    except TypeError as exc:  # cryptography: encrypted without a password, or a password for a plain key
        if passphrase:
            raise UnusableKey(
                "This key has no passphrase: leave the passphrase empty.", "KEY_PASSPHRASE_UNEXPECTED"
            ) from exc
        raise UnusableKey("This key is protected by a passphrase: enter it too.", "KEY_PASSPHRASE_REQUIRED") from exc
    except ValueError as exc:
        if passphrase:
            raise UnusableKey("The passphrase does not open this key.", "KEY_PASSPHRASE_WRONG") from exc
        raise UnusableKey(
            "This is not a private key the portal can read: paste an OpenSSH or PEM private key.", "KEY_FORMAT_INVALID"
        ) from exc


def check_private_key(text: str, passphrase: str | None) -> CheckedKey:
    """Raises UnusableKey (KEY_FORMAT_INVALID, KEY_PASSPHRASE_REQUIRED/WRONG/UNEXPECTED, KEY_TOO_WEAK)."""
    if not text.strip() or len(text) > MAX_KEY_TEXT_LENGTH or "PRIVATE KEY" not in text:
        raise UnusableKey("Paste a private key in OpenSSH or PEM form.", "KEY_FORMAT_INVALID")
    key = _load(text, passphrase)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise UnusableKey(f"RSA keys need at least {MIN_RSA_BITS} bits.", "KEY_TOO_WEAK")
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnusableKey("Use an ed25519, ECDSA or RSA key.", "KEY_TYPE_UNSUPPORTED")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return CheckedKey(public_key=public, key_type=public.split()[0])


def generate_ed25519_key(*, comment: str, passphrase: str | None) -> GeneratedKey:
    """A new ed25519 key pair, the private half in OpenSSH form (encrypted when a passphrase is given)."""
    key = ed25519.Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return GeneratedKey(private_key=private, public_key=f"{public} {comment}".strip())
