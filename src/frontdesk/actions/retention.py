"""Retention: what was said is kept for a limited time, per kind of data.

- ``retention_messages_days``: a resolved conversation with no activity for that long loses
  its messages, its vault entries (tokens and values), its agents' notes, its handoff
  summaries, its CSAT comment and its carried state. The conversation row, the handoff reasons
  and times and the rating stay: they identify nobody, and the statistics read them.
- ``retention_vault_days``: a resolved conversation with no activity for that long keeps its
  tokens (``<EMAIL_1>`` stays the same address within it) but not the raw values behind them.
- ``retention_events_days``: events older than that go, but only events the analytics rollup
  has consumed (up to its cursor): an event not yet counted is never deleted.

0 keeps that kind forever. Conversations still open or waiting are left alone. The purge runs
in batches, each its own transaction, and is audited as ``retention_purged`` (counts only).
The service runs it from its analytics job at most once an hour; ``frontdesk retention purge``
runs it by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from frontdesk.adapters.store import data_rights as store
from frontdesk.adapters.store import people
from frontdesk.analytics.rollup import CURSOR
from frontdesk.core.types import utcnow
from frontdesk.service import Frontdesk

K = TypeVar("K", str, int)
R = TypeVar("R")

BATCH = 500
EVENT_BATCH = 5000
SCHEDULE = "retention"  # its row in analytics_cursor records when the purge last ran
EVERY_SECONDS = 3600


def _conversation_batch(
    session: Session, cutoff: datetime, after: str, limit: int, *, dry_run: bool
) -> tuple[list[str], dict[str, int]]:
    ids = store.stale_conversations(session, cutoff, after, limit)
    if not ids:
        return ids, {}
    if dry_run:
        return ids, store.count_conversation_texts(session, ids)
    return ids, store.purge_conversation_texts(session, ids)


def _vault_batch(
    session: Session,
    cutoff: datetime,
    after: str,
    limit: int,
    *,
    dry_run: bool,
    messages_cutoff: datetime | None = None,
) -> tuple[list[str], int]:
    # A dry run leaves out what the messages' purge would have taken already.
    not_before = messages_cutoff if dry_run else None
    ids = store.stale_conversations(
        session, cutoff, after, limit, sealed_only=True, not_before=not_before
    )
    return ids, store.drop_vault_values(session, ids, dry_run=dry_run) if ids else 0


def _event_batch(
    session: Session, cutoff: datetime, after: int, limit: int, *, dry_run: bool
) -> tuple[list[int], int]:
    ids = store.old_events(session, cutoff, store.rolled_up_to(session, CURSOR), after, limit)
    if not ids or dry_run:
        return ids, len(ids)
    return ids, store.delete_events(session, ids)


async def _batches(
    fd: Frontdesk, batch: Callable[..., tuple[list[K], R]], first: K
) -> AsyncIterator[tuple[list[K], R]]:
    """Run ``batch(session, after=...)`` as one transaction after another, each starting
    after the last key of the one before, until one finds nothing."""
    after = first
    while True:
        ids, result = await fd.db.run(partial(batch, after=after))
        if not ids:
            return
        yield ids, result
        after = ids[-1]


async def purge(
    fd: Frontdesk,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH,
    event_batch_size: int = EVENT_BATCH,
) -> dict[str, int]:
    """Delete what is past its retention period; returns the number of rows per kind (with
    ``dry_run``, what would go, changing nothing)."""
    settings = fd.settings
    now = now or utcnow()
    counts: Counter[str] = Counter()
    messages_cutoff = None
    if settings.retention_messages_days > 0:
        cutoff = messages_cutoff = now - timedelta(days=settings.retention_messages_days)
        conversations = partial(
            _conversation_batch, cutoff=cutoff, limit=batch_size, dry_run=dry_run
        )
        async for ids, found in _batches(fd, conversations, ""):
            counts["conversations"] += len(ids)
            counts.update(found)
    if settings.retention_vault_days > 0:
        cutoff = now - timedelta(days=settings.retention_vault_days)
        vault = partial(
            _vault_batch,
            cutoff=cutoff,
            limit=batch_size,
            dry_run=dry_run,
            messages_cutoff=messages_cutoff,
        )
        async for _, dropped in _batches(fd, vault, ""):
            counts["vault_values"] += dropped
    if settings.retention_events_days > 0:
        cutoff = now - timedelta(days=settings.retention_events_days)
        events = partial(_event_batch, cutoff=cutoff, limit=event_batch_size, dry_run=dry_run)
        async for _numbers, deleted in _batches(fd, events, 0):
            counts["events"] += deleted
    result = {k: v for k, v in sorted(counts.items()) if v}
    if result and not dry_run:
        await fd.db.run(
            lambda s: people.audit(s, None, "retention_purged", None, {"counts": result})
        )
    return result


def _due(session: Session, now: datetime) -> bool:
    last = store.last_run(session, SCHEDULE)
    if last is not None and (now - last).total_seconds() < EVERY_SECONDS:
        return False
    store.mark_run(session, SCHEDULE)
    return True


async def purge_when_due(fd: Frontdesk) -> dict[str, Any] | None:
    """The scheduled purge: at most once an hour (across the service's workers, through the
    database). None when it was not due or every retention is 0."""
    settings = fd.settings
    if not (
        settings.retention_messages_days
        or settings.retention_vault_days
        or settings.retention_events_days
    ):
        return None
    now = utcnow()
    if not await fd.db.run(lambda s: _due(s, now)):
        return None
    return await purge(fd, now=now)
