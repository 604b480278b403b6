"""AES-GCM sealing of one personal value.

A sealed value is a plain string, so an event keeps the JSON shape its schema
describes::

    enc:v1:<base64url(key_id 16 bytes | nonce 12 bytes | ciphertext+tag)>

The key id is inside the token (and authenticated as associated data), so a
reader knows which data key opens it without any other field.
"""

from __future__ import annotations

import base64
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that is malformed or does not open with its key."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(plaintext: str, key_id: uuid.UUID, data_key: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode(), key_id.bytes)
    return PREFIX + base64.urlsafe_b64encode(key_id.bytes + nonce + ciphertext).decode().rstrip("=")


def key_id_of(token: str) -> uuid.UUID:
    return uuid.UUID(bytes=_decode(token)[:16])


def open_sealed(token: str, data_key: bytes) -> str:
    raw = _decode(token)
    key_id, nonce, ciphertext = raw[:16], raw[16 : 16 + NONCE_BYTES], raw[16 + NONCE_BYTES :]
    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext, key_id).decode()
    except InvalidTag as exc:
        raise SealError("sealed value does not open with its key") from exc


def _decode(token: str) -> bytes:
    if not is_sealed(token):
        raise SealError("not a sealed value")
    body = token[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise SealError("sealed value is not base64url") from exc
    if len(raw) < 16 + NONCE_BYTES + 16:
        raise SealError("sealed value is too short")
    return raw
