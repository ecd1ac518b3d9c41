"""Encryption keys: list them, rotate to a new one on a live database, retire an old one.

Rotation adds a key to the key file and makes it the active one (a running service re-reads
the file within a few seconds and seals with it too), then seals every value under another key
again under the new one: batch by batch (each batch one transaction), each row written only if
its value is still the one read, so what the live service writes meanwhile is never lost. It
repeats until no value under another key remains. Then the old key can be retired.

The same batches seal, on start, the values written in clear before their column was sealed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError
from frontdesk.adapters import crypto
from frontdesk.adapters.crypto import Keyring, SealError
from frontdesk.adapters.store import people, sealed
from frontdesk.adapters.store.database import Database
from frontdesk.adapters.store.sealed import SealedColumn

if TYPE_CHECKING:
    from frontdesk.service import Frontdesk

log = logging.getLogger("frontdesk")

BATCH = 500
Progress = Callable[[str, int, int], None]  # (what, done, total)


class KeysError(ActionError):
    """A key command that cannot be done (the message says what to do instead)."""

    def __init__(self, message: str) -> None:
        super().__init__("keys", message, 409)


@dataclass(frozen=True, slots=True)
class KeyUse:
    key: crypto.KeyInfo
    values: int
    columns: dict[str, int]


@dataclass(slots=True)
class Rotation:
    key_id: str
    added: bool
    previous: list[str]
    resealed: dict[str, int] = field(default_factory=dict)  # per table.column
    unreadable: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not any(self.remaining.values())


async def _with_retries(db: Database, work: Callable[[Session], Any]) -> Any:
    """One batch; a deadlock or a busy database makes it start over (three times at most)."""
    for attempt in range(3):
        try:
            return await db.run(work)
        except DBAPIError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


# --- values written in clear before their column was sealed ---------------------------------


async def seal_plaintext(db: Database, keyring: Keyring, batch: int = BATCH) -> dict[str, int]:
    """Seal every value of the pending columns still in clear. Returns the counts per column."""
    done: dict[str, int] = {}
    for column in await db.run(sealed.pending):
        after: tuple[Any, ...] | None = None
        count = 0
        while True:

            def work(
                session: Session, column: SealedColumn = column, after: Any = after
            ) -> tuple[Any, int, int]:
                rows = sealed.read_batch(session, column, after, batch)
                changed = 0
                for key, raw in rows:
                    new = sealed.seal_if_plain(keyring, column, raw)
                    if new is not None and sealed.compare_and_set(session, column, key, raw, new):
                        changed += 1
                return (rows[-1][0] if rows else None), len(rows), changed

            after, read, changed = await _with_retries(db, work)
            count += changed
            if read < batch:
                break
        await db.run(lambda s, column=column: sealed.mark_sealed(s, column))  # type: ignore[misc]
        if count:
            log.info("sealed %d values of %s written in clear", count, column.name)
        done[column.name] = count
    return done


# --- listing ------------------------------------------------------------------------------


async def key_uses(fd: Frontdesk) -> tuple[list[KeyUse], dict[str, int]]:
    """Each key with how many values it seals (per column), and the values under no key of
    the ring (per column; none unless a key went missing)."""
    keyring = fd.sealer
    ids = keyring.ids

    def count(session: Session) -> dict[str, dict[str, int]]:
        return {c.name: sealed.count_by_key(session, c, ids) for c in sealed.sealed_columns()}

    counts = await fd.db.run(count)
    uses = []
    for info in keyring.keys:
        columns = {name: n[info.id] for name, n in counts.items() if n[info.id]}
        uses.append(KeyUse(info, sum(columns.values()), columns))
    unknown = {name: n[""] for name, n in counts.items() if n[""]}
    return uses, unknown


async def _not_under(db: Database, key_id: str) -> dict[str, int]:
    def count(session: Session) -> dict[str, int]:
        return {c.name: sealed.count_not_under(session, c, key_id) for c in sealed.sealed_columns()}

    return dict(await db.run(count))


# --- rotation -----------------------------------------------------------------------------


def _environment_refusal(keyring: Keyring) -> KeysError:
    return KeysError(
        f"the keys come from {crypto.ENV_NAME}, so `frontdesk keys rotate` cannot add one. "
        "Put a new key first in that list (id:base64 of 32 random bytes, e.g. from "
        '`python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"`),'
        f" keep the others after it (now: {', '.join(keyring.ids)}), restart the service, "
        "then run `frontdesk keys rotate` again: it re-encrypts everything under the new key. "
        "Then the old key can be removed from the list."
    )


async def rotate(
    fd: Frontdesk,
    *,
    new_key: bool = True,
    progress: Progress | None = None,
    batch: int = BATCH,
    settle_seconds: float = 2 * crypto.RELOAD_SECONDS + 1,
    wait_seconds: float = 60.0,
) -> Rotation:
    """Make a new key active (unless ``new_key`` is false) and seal every value under another
    key again under it. ``settle_seconds``: how long after the new key a running service may
    still seal under the old one (it re-reads the key file every few seconds);
    ``wait_seconds``: how long to keep waiting for such values before giving up."""
    keyring = fd.sealer
    started = time.monotonic()
    previous = [k for k in keyring.ids if k != keyring.key_id]
    if keyring.from_environment:
        if not any((await _not_under(fd.db, keyring.key_id)).values()):
            raise _environment_refusal(keyring)
        new_key = False
    added = False
    if new_key:
        path = keyring.key_file
        if path is None:
            raise KeysError("this service's keys come from no key file: nothing to rotate")
        previous = list(keyring.ids)
        key_id = await asyncio.to_thread(crypto.add_key, path)
        keyring.refresh(force=True)
        if keyring.key_id != key_id:
            raise KeysError(f"the key file {path} changed while adding a key: run it again")
        added = True
        log.info("key %s added to %s and made active", key_id, path)
    active = keyring.key_id
    report = Rotation(active, added, previous)
    columns = sealed.sealed_columns()
    poll = max(0.05, min(1.0, settle_seconds / 4))
    last_progress = time.monotonic()
    while True:
        remaining = await _not_under(fd.db, active)
        report.remaining = {k: v for k, v in remaining.items() if v}
        total = sum(remaining.values())
        settled = not added or time.monotonic() - started >= settle_seconds
        if total == 0 and settled:
            break
        if total and settled and total <= sum(report.unreadable.values()):
            break  # what is left does not open: another pass changes nothing
        if total and time.monotonic() - last_progress > wait_seconds:
            break  # values under an old key keep coming: a service still seals with it
        if total == 0:
            await asyncio.sleep(poll)
            continue
        report.unreadable = {}
        before = sum(report.resealed.values())
        done = 0
        for column in columns:
            if not remaining.get(column.name):
                continue
            after: tuple[Any, ...] | None = None
            while True:

                def work(
                    session: Session, column: SealedColumn = column, after: Any = after
                ) -> tuple[Any, int, int, int]:
                    rows = sealed.read_batch(session, column, after, batch, not_under=active)
                    changed = failed = 0
                    for key, raw in rows:
                        try:
                            new = sealed.reseal(keyring, column, raw)
                        except SealError:
                            failed += 1
                            continue
                        if sealed.compare_and_set(session, column, key, raw, new):
                            changed += 1
                    return (rows[-1][0] if rows else None), len(rows), changed, failed

                after, read, changed, failed = await _with_retries(fd.db, work)
                if changed:
                    report.resealed[column.name] = report.resealed.get(column.name, 0) + changed
                    last_progress = time.monotonic()
                if failed:
                    report.unreadable[column.name] = report.unreadable.get(column.name, 0) + failed
                done += read
                if progress is not None:
                    progress("re-encrypting", min(done, total), total)
                if read < batch:
                    break
        if sum(report.resealed.values()) == before:
            await asyncio.sleep(poll)
    report.seconds = time.monotonic() - started

    def audit(session: Session) -> None:
        people.audit(
            session,
            None,
            "keys_rotated",
            None,
            {
                "key": active,
                "added": added,
                "previous": previous,
                "values": sum(report.resealed.values()),
                "remaining": sum(report.remaining.values()),
            },
        )

    await fd.db.run(audit)
    return report


# --- retiring -----------------------------------------------------------------------------


async def retire(fd: Frontdesk, key_id: str) -> None:
    """Remove a key that seals nothing any more from the key file."""
    keyring = fd.sealer
    if key_id == keyring.key_id:
        raise KeysError(f"{key_id} is the active key: run `frontdesk keys rotate` first")
    if not keyring.holds(key_id):
        raise KeysError(f"there is no key {key_id} (keys: {', '.join(keyring.ids)})")

    def count(session: Session) -> dict[str, int]:
        counts = {
            c.name: sealed.count_by_key(session, c, [key_id]) for c in sealed.sealed_columns()
        }
        return {name: n[key_id] for name, n in counts.items() if n[key_id]}

    left = await fd.db.run(count)
    if left:
        where = ", ".join(f"{name} {n}" for name, n in left.items())
        raise KeysError(
            f"{sum(left.values())} values are still sealed under {key_id} ({where}): run "
            "`frontdesk keys rotate` first"
        )
    origin = next(k.origin for k in keyring.keys if k.id == key_id)
    if origin == "environment" or (origin == "legacy" and keyring.key_file is None):
        raise KeysError(
            f"nothing is sealed under {key_id} any more, but the keys come from "
            f"{crypto.ENV_NAME}: remove {key_id} from that list and restart the service"
        )
    path = keyring.key_file
    assert path is not None
    try:
        await asyncio.to_thread(crypto.remove_key, path, key_id, keyring.legacy_id)
    except crypto.KeyringError as error:
        raise KeysError(str(error)) from error
    keyring.refresh(force=True)
    await fd.db.run(
        lambda s: people.audit(s, None, "key_retired", None, {"key": key_id, "origin": origin})
    )
