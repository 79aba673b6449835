"""Ed25519 signatures of checkpoints: the private key signs (AUDIT_SIGNING_KEY or
AUDIT_SIGNING_KEY_FILE), anyone holding the public key verifies (audit_public_key prints it).

Development uses a fixed, publicly known key derived from a constant: production refuses to
start without its own key (config/settings.py), and `check --deploy` reports audit.E002.
"""

import hashlib
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

ALGORITHM = "Ed25519"
DEV_SEED = hashlib.sha256(b"tollgate development audit signing key, never for production").digest()


def private_key_from(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the key must be an Ed25519 private key")
        return key
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))  # 64 hex digits (seed)


@cache
def _configured(key: str, key_file: str) -> Ed25519PrivateKey:
    if key:
        return private_key_from(key)
    if key_file:
        return private_key_from(Path(key_file).read_text(encoding="utf-8"))
    return Ed25519PrivateKey.from_private_bytes(DEV_SEED)


def signing_key() -> Ed25519PrivateKey:
    return _configured(settings.AUDIT_SIGNING_KEY, settings.AUDIT_SIGNING_KEY_FILE)


def uses_development_key() -> bool:
    return signing_key().private_bytes_raw() == DEV_SEED


def public_key_pem(private_key: Ed25519PrivateKey | None = None) -> str:
    public = (private_key or signing_key()).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_from_pem(text: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def sign(message: bytes, private_key: Ed25519PrivateKey | None = None) -> str:
    return (private_key or signing_key()).sign(message).hex()


def verifies(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
