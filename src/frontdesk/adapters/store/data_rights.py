"""Plain queries for data rights and retention: which conversations belong to a customer, the
rows that reference a set of conversations, deleting them, and the candidates of a retention
purge. Functions of a ``Session``; the caller runs them inside one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from frontdesk.adapters.store.tables import (
    AnalyticsCursorRow,
    AuditRow,
    Base,
    ConversationRow,
    CsatRow,
    EventRow,
    HandoffRow,
    LeadRow,
    MessageRow,
    NoteRow,
    PseudonymRow,
    ShopActionRow,
)
from frontdesk.core.types import Status, utcnow

# Ids per IN (...) list: well under the bind-parameter limits of SQLite and asyncpg.
CHUNK = 500
# Conversations read at a time when looking through their (possibly sealed) state.
STATE_PAGE = 1000

# The events that name a store customer in their payload (besides their conversation).
CUSTOMER_EVENTS = ("action_executed", "conversion")


def chunks(ids: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    items = sorted(set(ids))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _count(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def conversation_tables() -> list[Table]:
    """Every table with a ``conversation_id`` column, in the order rows can be deleted (the
    ones that reference ``conversations`` first)."""
    return [t for t in reversed(Base.metadata.sorted_tables) if "conversation_id" in t.c]


# --- who is a customer ----------------------------------------------------------------------


def conversations_verified_as(session: Session, customer_id: str) -> set[str]:
    """Conversations in which the store customer was verified (the conversation's state
    records them), that name them as their customer, or in which a tool wrote for them.

    The state may be sealed, so SQL cannot search it: every conversation's state is read, a
    page at a time, and looked at here."""
    found = set(
        session.execute(
            select(ConversationRow.id).where(ConversationRow.customer_id == customer_id)
        ).scalars()
    )
    after = ""
    while True:
        page = (
            session.execute(
                select(ConversationRow.id, ConversationRow.state)
                .where(ConversationRow.id > after)
                .order_by(ConversationRow.id)
                .limit(STATE_PAGE)
            )
            .tuples()
            .all()
        )
        if not page:
            break
        for cid, state in page:
            auth = (state or {}).get("auth") if isinstance(state, dict) else None
            if isinstance(auth, dict) and auth.get("customer_id") == customer_id:
                found.add(cid)
        after = page[-1][0]
    found |= {
        cid
        for cid in session.execute(
            select(ShopActionRow.conversation_id).where(ShopActionRow.customer_id == customer_id)
        ).scalars()
        if cid
    }
    return found


def conversations_with_value(session: Session, kind: str, digest: str) -> set[str]:
    """Conversations in which a value (an email address) was typed: its vault entry."""
    return set(
        session.execute(
            select(PseudonymRow.conversation_id).where(
                PseudonymRow.kind == kind, PseudonymRow.digest == digest
            )
        ).scalars()
    )


def leads_of(
    session: Session, conversation_ids: Sequence[str], email_digest: str | None
) -> list[LeadRow]:
    conditions: list[ColumnElement[bool]] = []
    if email_digest:
        conditions.append(LeadRow.email_digest == email_digest)
    for ids in chunks(conversation_ids):
        conditions.append(LeadRow.conversation_id.in_(ids))
    if not conditions:
        return []
    return list(
        session.execute(select(LeadRow).where(or_(*conditions)).order_by(LeadRow.created_at))
        .scalars()
        .all()
    )


def lock_conversations(session: Session, ids: Sequence[str]) -> None:
    """Lock the conversations' rows for this transaction (PostgreSQL; SQLite runs one
    transaction at a time): a message to one of them waits, then finds it gone."""
    for part in chunks(ids):
        session.execute(
            select(ConversationRow.id).where(ConversationRow.id.in_(part)).with_for_update()
        ).all()


def conversation_traces(session: Session, conversation_id: str) -> bool:
    """Whether any table still holds a row of the conversation."""
    if session.get(ConversationRow, conversation_id) is not None:
        return True
    for found in conversation_tables():
        column = found.c.conversation_id
        if session.execute(select(column).where(column == conversation_id).limit(1)).first():
            return True
    return False


# --- reads and deletes over a set of conversations -------------------------------------------


def rows_in(
    session: Session, entity: Any, column: Any, ids: Sequence[str], *order: Any
) -> list[Any]:
    """ORM rows of ``entity`` whose ``column`` is one of ``ids``."""
    found: list[Any] = []
    for part in chunks(ids):
        query = select(entity).where(column.in_(part))
        if order:
            query = query.order_by(*order)
        found += list(session.execute(query).scalars())
    return found


def customer_texts(session: Session, conversation_ids: Sequence[str], role: str) -> list[str]:
    texts: list[str] = []
    for part in chunks(conversation_ids):
        texts += list(
            session.execute(
                select(MessageRow.text).where(
                    MessageRow.conversation_id.in_(part), MessageRow.role == role
                )
            ).scalars()
        )
    return texts


def delete_in(session: Session, target: Table, column: str, ids: Iterable[Any]) -> int:
    """Delete the rows of ``target`` whose ``column`` is one of ``ids``; how many went."""
    deleted = 0
    values = sorted(set(ids), key=str)
    for start in range(0, len(values), CHUNK):
        part = values[start : start + CHUNK]
        deleted += _count(session.execute(delete(target).where(target.c[column].in_(part))))
    return deleted


def delete_where(session: Session, target: Table, condition: ColumnElement[bool]) -> int:
    return _count(session.execute(delete(target).where(condition)))


def customer_events(session: Session, customer_id: str) -> list[int]:
    """Events that name the store customer in their payload (actions, conversions)."""
    named = EventRow.payload["customer_id"].as_string()
    return list(
        session.execute(
            select(EventRow.id).where(EventRow.type.in_(CUSTOMER_EVENTS), named == customer_id)
        ).scalars()
    )


def audit_about(session: Session, conversation_ids: Sequence[str], customer_id: str | None) -> Any:
    """The audit entries about the conversations or the store customer."""
    conditions: list[ColumnElement[bool]] = [
        AuditRow.conversation_id.in_(part) for part in chunks(conversation_ids)
    ]
    if customer_id:
        conditions.append(AuditRow.detail["customer"].as_string() == customer_id)
    if not conditions:
        return []
    return list(
        session.execute(select(AuditRow).where(or_(*conditions)).order_by(AuditRow.id)).scalars()
    )


def deidentify_audit(session: Session, ids: Sequence[int], mark: str) -> int:
    """Keep the entries (who did what, when) without the conversation or customer they name:
    the conversation id goes, the detail becomes the erasure's keyed mark."""
    changed = 0
    for start in range(0, len(ids), CHUNK):
        part = list(ids[start : start + CHUNK])
        changed += _count(
            session.execute(
                update(AuditRow)
                .where(AuditRow.id.in_(part))
                .values(conversation_id=None, detail={"erased_subject": mark})
                .execution_options(synchronize_session=False)
            )
        )
    return changed


def erasure_entries(session: Session) -> list[AuditRow]:
    return list(
        session.execute(
            select(AuditRow).where(AuditRow.action == "customer_erased").order_by(AuditRow.id)
        ).scalars()
    )


# --- retention -----------------------------------------------------------------------------


def _has_content() -> ColumnElement[bool]:
    cid = ConversationRow.id
    return or_(
        exists().where(MessageRow.conversation_id == cid),
        exists().where(PseudonymRow.conversation_id == cid),
        exists().where(NoteRow.conversation_id == cid),
    )


def stale_conversations(
    session: Session,
    cutoff: datetime,
    after: str,
    limit: int,
    *,
    sealed_only: bool = False,
    not_before: datetime | None = None,
) -> list[str]:
    """Resolved conversations with no activity since ``cutoff`` (but some since
    ``not_before``) that still hold messages (or, ``sealed_only``, vault values), in id order
    after ``after``."""
    condition = (
        exists().where(
            PseudonymRow.conversation_id == ConversationRow.id, PseudonymRow.sealed.is_not(None)
        )
        if sealed_only
        else _has_content()
    )
    query = select(ConversationRow.id).where(
        ConversationRow.status == Status.RESOLVED.value,
        ConversationRow.updated_at < cutoff,
        ConversationRow.id > after,
        condition,
    )
    if not_before is not None:
        query = query.where(ConversationRow.updated_at >= not_before)
    # On PostgreSQL the rows stay locked until the batch commits: a message arriving meanwhile
    # waits, and a conversation in the middle of a turn is skipped (it is active anyway).
    query = query.order_by(ConversationRow.id).limit(limit).with_for_update(skip_locked=True)
    return list(session.execute(query).scalars())


def count_in(session: Session, entity: Any, column: Any, ids: Sequence[str], *extra: Any) -> int:
    total = 0
    for part in chunks(ids):
        total += int(
            session.execute(
                select(func.count()).select_from(entity).where(column.in_(part), *extra)
            ).scalar_one()
        )
    return total


def purge_conversation_texts(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """Delete what the conversations hold of what was said (messages, the vault, agents'
    notes), empty the handoff summaries, CSAT comments and the carried state; keep the
    conversation rows, handoff reasons and ratings, which identify nobody."""
    counts = {
        "messages": delete_in(session, table("messages"), "conversation_id", ids),
        "pseudonyms": delete_in(session, table("pseudonyms"), "conversation_id", ids),
        "notes": delete_in(session, table("notes"), "conversation_id", ids),
        "handoff_summaries": 0,
        "csat_comments": 0,
    }
    for part in chunks(ids):
        counts["handoff_summaries"] += _count(
            session.execute(
                update(HandoffRow)
                .where(HandoffRow.conversation_id.in_(part))
                .values(summary={})
                .execution_options(synchronize_session=False)
            )
        )
        counts["csat_comments"] += _count(
            session.execute(
                update(CsatRow)
                .where(CsatRow.conversation_id.in_(part), CsatRow.comment.is_not(None))
                .values(comment=None)
                .execution_options(synchronize_session=False)
            )
        )
        for cid, state in session.execute(
            select(ConversationRow.id, ConversationRow.state).where(ConversationRow.id.in_(part))
        ).tuples():
            kept = {k: v for k, v in (state or {}).items() if k == "experiment"}
            if kept != (state or {}):
                session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.id == cid)
                    .values(state=kept)
                    .execution_options(synchronize_session=False)
                )
    return counts


def count_conversation_texts(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """What ``purge_conversation_texts`` would delete (a dry run)."""
    return {
        "messages": count_in(session, MessageRow, MessageRow.conversation_id, ids),
        "pseudonyms": count_in(session, PseudonymRow, PseudonymRow.conversation_id, ids),
        "notes": count_in(session, NoteRow, NoteRow.conversation_id, ids),
        "handoff_summaries": count_in(session, HandoffRow, HandoffRow.conversation_id, ids),
        "csat_comments": count_in(
            session, CsatRow, CsatRow.conversation_id, ids, CsatRow.comment.is_not(None)
        ),
    }


def drop_vault_values(session: Session, ids: Sequence[str], *, dry_run: bool) -> int:
    """Remove the raw values behind the conversations' tokens (the tokens stay)."""
    if dry_run:
        return count_in(
            session,
            PseudonymRow,
            PseudonymRow.conversation_id,
            ids,
            PseudonymRow.sealed.is_not(None),
        )
    dropped = 0
    for part in chunks(ids):
        dropped += _count(
            session.execute(
                update(PseudonymRow)
                .where(PseudonymRow.conversation_id.in_(part), PseudonymRow.sealed.is_not(None))
                .values(sealed=None)
                .execution_options(synchronize_session=False)
            )
        )
    return dropped


def rolled_up_to(session: Session, cursor: str) -> int:
    """The id of the last event the analytics rollup has consumed (0: none yet)."""
    found = session.get(AnalyticsCursorRow, cursor)
    return int(found.last_event_id) if found is not None else 0


def old_events(session: Session, cutoff: datetime, up_to: int, after: int, limit: int) -> list[int]:
    """Ids of events older than ``cutoff`` that the rollup has consumed (id <= ``up_to``)."""
    return list(
        session.execute(
            select(EventRow.id)
            .where(EventRow.id > after, EventRow.id <= up_to, EventRow.created_at < cutoff)
            .order_by(EventRow.id)
            .limit(limit)
        ).scalars()
    )


def delete_events(session: Session, ids: Sequence[int]) -> int:
    return delete_in(session, table("events"), "id", ids)


def last_run(session: Session, name: str) -> datetime | None:
    """When a scheduled job last ran, as recorded in a row of ``analytics_cursor``."""
    found = session.get(AnalyticsCursorRow, name)
    return None if found is None else found.updated_at


def mark_run(session: Session, name: str) -> None:
    found = session.get(AnalyticsCursorRow, name)
    if found is None:
        session.add(AnalyticsCursorRow(name=name, last_event_id=0, updated_at=utcnow()))
    else:
        found.updated_at = utcnow()
