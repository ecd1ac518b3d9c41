"""Sealing: authenticated encryption (AES-256-GCM) of the personal data Frontdesk keeps.

A sealed value is text: ``<key id>:<base64 of nonce + ciphertext>``, so a value names the key
that sealed it. An optional label (the table and column) is bound as associated data: a value
copied into another column does not open.

The keys form a ``Keyring``: one active key seals, every key of the ring opens. They come from

- ``FRONTDESK_ENCRYPTION_KEYS`` (``id:base64,id:base64``, the first one active), or
- a key file, ``<data dir>/keys.json`` by default (mode 0600), created on the first start with
  one random 256-bit key; ``frontdesk keys rotate`` adds a key to it and makes it active;
- and, read-only, the *legacy* key: the one derived from the secret key with HKDF-SHA256 that
  sealed values before key files existed, until ``frontdesk keys retire`` removes it.

Keys never go into the database. A service re-reads its key file when the file changes
(looked at no more than every ``RELOAD_SECONDS``, and at once when a value names a key it does
not hold), so a rotation done from the command line reaches a running service.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("frontdesk")

_NONCE = 12
_TAG = 16
KEY_BYTES = 32
RELOAD_SECONDS = 2.0
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,31}")
ENV_NAME = "FRONTDESK_ENCRYPTION_KEYS"


class SealError(ValueError):
    """A sealed value that is malformed, sealed under an unknown key, or tampered with."""


class KeyringError(ValueError):
    """The keys cannot be read: a malformed key file or key list, or a key that is missing."""


def derive_key(secret: bytes, purpose: bytes = b"frontdesk seal v1") -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def key_id_of(key: bytes) -> str:
    """The id Frontdesk gives a key it made: a short digest of the key."""
    return "k" + hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    origin: str  # "file", "environment" or "legacy"
    active: bool
    created: str | None = None


@dataclass(frozen=True, slots=True)
class _Keys:
    """One immutable view of the ring: swapped whole when the key file changes."""

    active: str
    aeads: Mapping[str, AESGCM]
    info: tuple[KeyInfo, ...]


class Keyring:
    """Seals under the active key; opens under any key of the ring."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active: str,
        *,
        origins: Mapping[str, str] | None = None,
        created: Mapping[str, str] | None = None,
    ) -> None:
        self._keys = _build(keys, active, origins or {}, created or {})
        self._key_file: Path | None = None
        self._legacy: tuple[str, bytes] | None = None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0

    @classmethod
    def from_key_file(cls, path: Path, legacy: tuple[str, bytes] | None = None) -> Keyring:
        """The keys of a key file (and the legacy key, unless the file retired it)."""
        data, stamp = _read_key_file(path)
        ring = cls.__new__(cls)
        ring._keys = _from_key_file(data, path, legacy)
        ring._key_file = path
        ring._legacy = legacy
        ring._lock = threading.Lock()
        ring._stamp = stamp
        ring._next_check = time.monotonic() + RELOAD_SECONDS
        return ring

    # --- what the ring holds -------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """The id of the active key (the one that seals)."""
        return self._keys.active

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, the active one first."""
        return tuple(k.id for k in self._keys.info)

    @property
    def keys(self) -> tuple[KeyInfo, ...]:
        return self._keys.info

    @property
    def key_file(self) -> Path | None:
        """The key file the ring was read from; None when the keys come from elsewhere."""
        return self._key_file

    @property
    def from_environment(self) -> bool:
        return any(k.origin == "environment" for k in self._keys.info)

    @property
    def legacy_id(self) -> str | None:
        """The id of the key derived from the secret key (held or retired)."""
        if self._legacy is not None:
            return self._legacy[0]
        return next((k.id for k in self._keys.info if k.origin == "legacy"), None)

    def holds(self, key_id: str) -> bool:
        return key_id in self._keys.aeads

    # --- sealing -------------------------------------------------------------------------

    def seal(self, plain: str, label: str = "") -> str:
        if self._key_file is not None and time.monotonic() >= self._next_check:
            self.refresh()
        keys = self._keys
        nonce = os.urandom(_NONCE)
        sealed = keys.aeads[keys.active].encrypt(nonce, plain.encode(), label.encode() or None)
        return f"{keys.active}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, label: str = "") -> str:
        key_id, colon, body = sealed.partition(":")
        aead = self._keys.aeads.get(key_id)
        if aead is None:
            if not colon or not KEY_ID.fullmatch(key_id):
                raise SealError("the value is not sealed (plain text, or damaged)")
            if self.refresh(force=True):
                aead = self._keys.aeads.get(key_id)
            if aead is None:
                raise SealError(
                    f"sealed under key {key_id!r}, which this service does not hold "
                    f"(it holds {', '.join(self.ids)})"
                )
        try:
            raw = base64.b64decode(body, validate=True)
            if len(raw) < _NONCE + _TAG:
                raise ValueError("too short")
            plain = aead.decrypt(raw[:_NONCE], raw[_NONCE:], label.encode() or None)
        except (ValueError, binascii.Error, InvalidTag) as error:
            raise SealError("the sealed value does not open (tampered or wrong label)") from error
        return plain.decode()

    def seal_json(self, value: Any, label: str = "") -> str:
        return self.seal(json.dumps(value, sort_keys=True, separators=(",", ":")), label)

    def open_json(self, sealed: str, label: str = "") -> Any:
        return json.loads(self.open(sealed, label))

    @staticmethod
    def key_of(sealed: str) -> str | None:
        """The id of the key a sealed value names (None: not a sealed value)."""
        key_id, colon, _ = sealed.partition(":")
        return key_id if colon and KEY_ID.fullmatch(key_id) else None

    @staticmethod
    def looks_sealed(value: str) -> bool:
        """Whether a value has the sealed form, under whatever key."""
        key_id, colon, body = value.partition(":")
        if not colon or not KEY_ID.fullmatch(key_id):
            return False
        try:
            return len(base64.b64decode(body, validate=True)) >= _NONCE + _TAG
        except (ValueError, binascii.Error):
            return False

    # --- the key file --------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the key file if it changed since it was read. Unless ``force``, looks at
        the file at most every ``RELOAD_SECONDS``. True when the keys changed."""
        path = self._key_file
        if path is None:
            return False
        with self._lock:
            now = time.monotonic()
            if not force and now < self._next_check:
                return False
            self._next_check = now + RELOAD_SECONDS
            try:
                stamp = _stamp(path)
                if stamp == self._stamp:
                    return False
                data, stamp = _read_key_file(path)
                self._keys = _from_key_file(data, path, self._legacy)
                self._stamp = stamp
            except (OSError, KeyringError) as error:  # keep sealing with the keys it has
                log.error("the key file %s cannot be read again: %s", path, error)
                return False
        log.info("keys re-read from %s: active key %s", path, self.key_id)
        return True


def _build(
    keys: Mapping[str, bytes],
    active: str,
    origins: Mapping[str, str],
    created: Mapping[str, str],
) -> _Keys:
    if active not in keys:
        raise KeyringError(f"the active key {active!r} is not among the keys")
    aeads = {}
    for key_id, key in keys.items():
        if not KEY_ID.fullmatch(key_id):
            raise KeyringError(f"key id {key_id[:40]!r}: use 1 to 32 letters, digits, '.' or '-'")
        if len(key) != KEY_BYTES:
            raise KeyringError(f"key {key_id}: {len(key)} bytes, a key has {KEY_BYTES}")
        aeads[key_id] = AESGCM(key)
    order = [active, *(k for k in keys if k != active)]
    info = tuple(KeyInfo(k, origins.get(k, "file"), k == active, created.get(k)) for k in order)
    return _Keys(active, aeads, info)


def Sealer(secret: bytes) -> Keyring:
    """A ring of one key, derived from ``secret`` (how values were sealed before key files)."""
    key = derive_key(secret)
    key_id = key_id_of(key)
    return Keyring({key_id: key}, key_id, origins={key_id: "legacy"})


# --- loading the keys ---------------------------------------------------------------------


def load_keyring(
    secret: bytes, key_file: Path, environment: str | None = None, *, create: bool = True
) -> Keyring:
    """The service's keys: from ``environment`` (the ``FRONTDESK_ENCRYPTION_KEYS`` list) when
    set, else from ``key_file`` (created with one new key when absent and ``create``); the
    legacy key derived from ``secret`` joins them read-only unless retired."""
    legacy_key = derive_key(secret)
    legacy = (key_id_of(legacy_key), legacy_key)
    if environment is not None and environment.strip():
        keys = parse_key_list(environment)
        origins = dict.fromkeys(keys, "environment")
        if legacy[0] not in keys:
            keys[legacy[0]] = legacy[1]
            origins[legacy[0]] = "legacy"
        return Keyring(keys, next(iter(origins)), origins=origins)
    if not key_file.exists():
        if not create:
            raise KeyringError(f"no key file at {key_file}")
        create_key_file(key_file)
    return Keyring.from_key_file(key_file, legacy)


def parse_key_list(text: str) -> dict[str, bytes]:
    """``id:base64,id:base64`` (the first one is the active key)."""
    keys: dict[str, bytes] = {}
    for number, item in enumerate((i.strip() for i in text.split(",")), start=1):
        if not item:
            continue
        key_id, colon, encoded = item.partition(":")
        if not colon or not KEY_ID.fullmatch(key_id):
            raise KeyringError(
                f"{ENV_NAME}: item {number} is not 'id:base64key' (an id is 1 to 32 letters, "
                "digits, '.' or '-')"
            )
        if key_id in keys:
            raise KeyringError(f"{ENV_NAME}: key id {key_id} is listed twice")
        keys[key_id] = _decode_key(encoded, f"{ENV_NAME}: key {key_id}")
    if not keys:
        raise KeyringError(f"{ENV_NAME} is set but lists no key")
    return keys


def _decode_key(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyringError(f"{where}: not base64") from error
    if len(key) != KEY_BYTES:
        raise KeyringError(f"{where}: {len(key)} bytes, a key has {KEY_BYTES} (256 bits)")
    return key


def new_key() -> tuple[str, bytes]:
    key = os.urandom(KEY_BYTES)
    return key_id_of(key), key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _stamp(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_ino, found.st_mtime_ns, found.st_size


def _read_key_file(path: Path) -> tuple[dict[str, Any], tuple[int, int, int]]:
    try:
        with path.open("rb") as handle:
            found = os.fstat(handle.fileno())
            raw = handle.read()
    except FileNotFoundError as error:
        raise KeyringError(f"no key file at {path}") from error
    if found.st_mode & 0o077:
        log.warning("the key file %s can be read by others: chmod 600 it", path)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise KeyringError(f"the key file {path} is not JSON ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise KeyringError(f"the key file {path} has no 'keys' object")
    return data, (found.st_ino, found.st_mtime_ns, found.st_size)


def _from_key_file(data: dict[str, Any], path: Path, legacy: tuple[str, bytes] | None) -> _Keys:
    keys: dict[str, bytes] = {}
    created: dict[str, str] = {}
    origins: dict[str, str] = {}
    for key_id, entry in data["keys"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise KeyringError(f"the key file {path}: key {key_id} has no 'key'")
        keys[key_id] = _decode_key(entry["key"], f"the key file {path}: key {key_id}")
        created[key_id] = str(entry.get("created", ""))
        origins[key_id] = "file"
    active = data.get("active")
    if not isinstance(active, str) or active not in keys:
        raise KeyringError(f"the key file {path}: 'active' names no key of the file")
    if legacy is not None and not data.get("legacy_retired") and legacy[0] not in keys:
        keys[legacy[0]] = legacy[1]
        origins[legacy[0]] = "legacy"
    try:
        return _build(keys, active, origins, created)
    except KeyringError as error:
        raise KeyringError(f"the key file {path}: {error}") from error


def _write_atomically(path: Path, data: dict[str, Any], *, replace: bool) -> bool:
    """Write ``data`` to a new file (mode 0600) and move it into place. Without ``replace``
    an existing file wins (False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_key_file(path: Path) -> None:
    """A new key file holding one random key (kept if another process made one first)."""
    key_id, key = new_key()
    data = {"active": key_id, "keys": {key_id: {"key": encode_key(key), "created": _now()}}}
    if _write_atomically(path, data, replace=False):
        log.info("created the key file %s with key %s", path, key_id)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    """The key file's content, with the file locked against other changes."""
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data, _ = _read_key_file(path)
        yield data
    finally:
        os.close(fd)


def add_key(path: Path) -> str:
    """Add a new random key to the key file and make it the active one. Returns its id."""
    with _locked(path) as data:
        key_id, key = new_key()
        while key_id in data["keys"]:
            key_id, key = new_key()
        data["keys"][key_id] = {"key": encode_key(key), "created": _now()}
        data["active"] = key_id
        _write_atomically(path, data, replace=True)
    return key_id


def remove_key(path: Path, key_id: str, legacy_id: str | None) -> None:
    """Remove a key from the key file (or mark the legacy key retired)."""
    with _locked(path) as data:
        if data.get("active") == key_id:
            raise KeyringError(f"{key_id} is the active key: rotate first")
        if key_id in data["keys"]:
            del data["keys"][key_id]
        elif key_id == legacy_id:
            data["legacy_retired"] = True
        else:
            raise KeyringError(f"the key file {path} has no key {key_id}")
        _write_atomically(path, data, replace=True)
