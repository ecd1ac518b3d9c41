"""Sealing: authenticated encryption (AES-256-GCM) of the personal data Frontdesk must keep.

A sealed value is text: ``<key id>:<base64 of nonce + ciphertext>``. The key is derived from
the service's secret key with HKDF-SHA256, and its id is a short digest of the key, so a value
names the key that sealed it. An optional label (the table and column) is bound as associated
data: a value copied into another column does not open.

Half-built on purpose: one key, derived from the secret key. Issue 6 (key files, several keys,
``frontdesk keys rotate``) extends this class; the sealed format already carries the key id
that rotation needs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class SealError(ValueError):
    """A sealed value that is malformed, sealed under an unknown key, or tampered with."""


def derive_key(secret: bytes, purpose: bytes = b"frontdesk seal v1") -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Sealer:
    def __init__(self, secret: bytes) -> None:
        self._key = derive_key(secret)
        self.key_id = "k" + hashlib.sha256(self._key).hexdigest()[:8]
        self._aead = AESGCM(self._key)

    def seal(self, plain: str, label: str = "") -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plain.encode(), label.encode() or None)
        return f"{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, label: str = "") -> str:
        key_id, _, body = sealed.partition(":")
        if key_id != self.key_id:
            raise SealError(f"sealed under key {key_id!r}, which this service does not hold")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], label.encode() or None)
        except (ValueError, InvalidTag) as error:
            raise SealError("the sealed value does not open (tampered or wrong label)") from error
        return plain.decode()

    def seal_json(self, value: Any, label: str = "") -> str:
        return self.seal(json.dumps(value, sort_keys=True, separators=(",", ":")), label)

    def open_json(self, sealed: str, label: str = "") -> Any:
        return json.loads(self.open(sealed, label))
