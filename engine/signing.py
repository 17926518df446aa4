"""The Ed25519 key that signs checkpoints: created on first use, named by a short key id.

The private key is a PKCS #8 PEM file readable by its owner only (mode 0600). The key id is the first
16 hex digits of the SHA-256 of the 32-byte raw public key, so anyone holding the public key can
recompute it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import InvalidInput, LiuhenError
from engine.i18n import msg

logger = logging.getLogger(__name__)

KEY_ID_LENGTH = 16


class SigningKeyError(LiuhenError):
    """The signing key file exists but cannot be read or is not an Ed25519 private key."""

    code = "signing_key_invalid"
    status = 500


def load_private_key(path: Path) -> Ed25519PrivateKey | None:
    """Read the private key at ``path``; returns None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SigningKeyError(msg("The signing key {path} cannot be read: {reason}.", path=str(path),
                                  reason=exc.strerror), path=str(path)) from exc
    if path.stat().st_mode & 0o077:
        logger.warning("signing key %s is readable by other users; run chmod 600 on it", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(msg("The signing key {path} is not an unencrypted PEM private key.",
                                  path=str(path)), path=str(path)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(msg("The signing key {path} is not an Ed25519 key.", path=str(path)), path=str(path))
    return key


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the private key at ``path``, generating it with mode 0600 if the file does not exist yet."""
    key = load_private_key(path)
    if key is not None:
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file and hard-link it into place: the link fails if another process
    # created the key first, and no reader ever sees a half-written file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(pem)
        os.chmod(temporary, 0o600)
        os.link(temporary, path)
    except FileExistsError:
        os.unlink(temporary)
        existing = load_private_key(path)
        assert existing is not None  # the link failed because the file exists
        return existing
    os.unlink(temporary)
    logger.info("created signing key %s", path, extra={"key_id": key_id(key.public_key())})
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_LENGTH]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def parse_public_key(pem: str, path: str | None = None) -> Ed25519PublicKey:
    """Load an Ed25519 public key from PEM text, read from the file ``path`` or else from a checkpoint."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        key = None
        cause: Exception | None = exc
    else:
        cause = None
    if not isinstance(key, Ed25519PublicKey):
        if path is None:
            raise InvalidInput(msg("Field public_key is not an Ed25519 public key in PEM form.")) from cause
        raise InvalidInput(msg("File {path} does not contain an Ed25519 public key in PEM form.",
                               path=path)) from cause
    return key


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return private_key.sign(message).hex()


def signature_valid(public_key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
