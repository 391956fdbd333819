"""SSH private keys: the one reader of key text, the check when a member saves a key, new ed25519 keys.

Owns how OpenSSH/PEM private key text and its passphrase are read (with `cryptography`, once), the
passphrase rules, the codes a member sees when saving a key, and the paramiko key a connection uses.
Must never know Django, models or where a key is stored; no error message ever holds key text or a
passphrase.

Save-time codes (`UnusableKey.code`, stable): KEY_FORMAT_INVALID, KEY_PASSPHRASE_REQUIRED,
KEY_PASSPHRASE_WRONG, KEY_PASSPHRASE_UNEXPECTED, KEY_TOO_WEAK, KEY_TYPE_UNSUPPORTED.
Connect-time errors: KeyPassphraseWrong, KeyInvalid (see clusters.ssh.errors).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from clusters.ssh.errors import KeyInvalid, KeyPassphraseWrong

MAX_KEY_TEXT_LENGTH = 20_000
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """A key the portal cannot use; `code` is stable, the message is for the member."""

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


def read_private_key(text: str, passphrase: str | None) -> PrivateKeyTypes:
    """The private key in OpenSSH or PEM text, opened with the passphrase if it is encrypted.

    Raises UnusableKey: KEY_PASSPHRASE_REQUIRED (encrypted, no passphrase), KEY_PASSPHRASE_WRONG (encrypted,
    the passphrase does not open it), KEY_PASSPHRASE_UNEXPECTED (a passphrase for a key that is not
    encrypted), KEY_FORMAT_INVALID (anything else).
    """
    data = text.strip().encode() + b"\n"
    password = passphrase.encode() if passphrase else None
    is_openssh = b"OPENSSH PRIVATE KEY" in data
    try:
        return _load(data, password, is_openssh=is_openssh)
    except TypeError as exc:  # cryptography: encrypted without a password, or a password for a plain key
        if password is not None:
            raise UnusableKey(
                "This key has no passphrase: leave the passphrase empty.", "KEY_PASSPHRASE_UNEXPECTED"
            ) from exc
        raise UnusableKey("This key is protected by a passphrase: enter it too.", "KEY_PASSPHRASE_REQUIRED") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        if password is not None and _is_encrypted(data, is_openssh=is_openssh):
            raise UnusableKey("The passphrase does not open this key.", "KEY_PASSPHRASE_WRONG") from exc
        raise UnusableKey(
            "This is not a private key the portal can read: paste an OpenSSH or PEM private key.", "KEY_FORMAT_INVALID"
        ) from exc


def _load(data: bytes, password: bytes | None, *, is_openssh: bool) -> PrivateKeyTypes:
    if is_openssh:
        return serialization.load_ssh_private_key(data, password)
    return serialization.load_pem_private_key(data, password)


def _is_encrypted(data: bytes, *, is_openssh: bool) -> bool:
    try:
        _load(data, None, is_openssh=is_openssh)
    except TypeError:
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


def check_private_key(text: str, passphrase: str | None) -> CheckedKey:
    """Raises UnusableKey (KEY_FORMAT_INVALID, KEY_PASSPHRASE_REQUIRED/WRONG/UNEXPECTED, KEY_TOO_WEAK)."""
    if not text.strip() or len(text) > MAX_KEY_TEXT_LENGTH or "PRIVATE KEY" not in text:
        raise UnusableKey("Paste a private key in OpenSSH or PEM form.", "KEY_FORMAT_INVALID")
    key = read_private_key(text, passphrase)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise UnusableKey(f"RSA keys need at least {MIN_RSA_BITS} bits.", "KEY_TOO_WEAK")
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnusableKey("Use an ed25519, ECDSA or RSA key.", "KEY_TYPE_UNSUPPORTED")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return CheckedKey(public_key=public, key_type=public.split()[0])


def load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """The paramiko key for ed25519/ecdsa/rsa key text (OpenSSH or PEM). Raises KeyPassphraseWrong, KeyInvalid."""
    try:
        key = read_private_key(text, passphrase)
    except UnusableKey as exc:
        if exc.code == "KEY_PASSPHRASE_UNEXPECTED":
            # Saving refuses it, so no stored credential has one; like ssh, connecting ignores a needless passphrase.
            return load_private_key(text, None)
        if exc.code == "KEY_PASSPHRASE_REQUIRED":
            raise KeyPassphraseWrong("the private key is encrypted and no passphrase was given") from exc
        if exc.code == "KEY_PASSPHRASE_WRONG":
            raise KeyPassphraseWrong("the passphrase does not open the private key") from exc
        raise KeyInvalid("the private key text is not a readable ed25519, ecdsa or rsa key") from exc
    key_class: type[paramiko.PKey]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key_class = paramiko.Ed25519Key
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    elif isinstance(key, rsa.RSAPrivateKey):
        key_class = paramiko.RSAKey
    else:
        raise KeyInvalid(f"unsupported private key type {type(key).__name__}")
    # paramiko gets the key already opened, in plain OpenSSH form: the passphrase rules above are the only ones.
    plain = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    try:
        return key_class.from_private_key(io.StringIO(plain))
    except paramiko.SSHException as exc:
        raise KeyInvalid(f"paramiko cannot use this {key_class.__name__}") from exc


def generate_ed25519_key(*, comment: str, passphrase: str | None) -> GeneratedKey:
    """A new ed25519 key pair, the private half in OpenSSH form (encrypted when a passphrase is given)."""
    key = ed25519.Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return GeneratedKey(private_key=private, public_key=f"{public} {comment}".strip())
