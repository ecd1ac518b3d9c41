"""Queries over the tables, as plain functions of a ``Session``. The caller runs them inside
one transaction (``Database.run``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters.store.tables import (
    ConversationRow,
    EventRow,
    MessageRow,
    PseudonymRow,
)
from frontdesk.core.types import (
    ArticleId,
    Citation,
    Conversation,
    ConversationId,
    CustomerId,
    Message,
    MessageId,
    Mode,
    Role,
    Status,
    utcnow,
)


def new_id() -> str:
    return str(uuid.uuid4())


def to_conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=ConversationId(row.id),
        channel=row.channel,
        mode=Mode(row.mode),
        status=Status(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        customer_id=CustomerId(row.customer_id) if row.customer_id else None,
        state=dict(row.state or {}),
    )


def to_message(row: MessageRow) -> Message:
    return Message(
        id=MessageId(row.id),
        conversation_id=ConversationId(row.conversation_id),
        seq=row.seq,
        role=Role(row.role),
        text=row.text,
        created_at=row.created_at,
        client_message_id=row.client_message_id,
        reply_to=MessageId(row.reply_to) if row.reply_to else None,
        citations=tuple(Citation(id=ArticleId(c["id"]), title=c["title"]) for c in row.citations),
    )


def create_conversation(session: Session, channel: str) -> ConversationRow:
    now = utcnow()
    row = ConversationRow(
        id=new_id(),
        channel=channel,
        mode=Mode.BOT.value,
        status=Status.OPEN.value,
        customer_id=None,
        state={},
        last_seq=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def get_conversation(
    session: Session, conversation_id: str, *, for_update: bool = False
) -> ConversationRow | None:
    query = select(ConversationRow).where(ConversationRow.id == conversation_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (session.execute(query)).scalar_one_or_none()


def find_by_client_id(
    session: Session, conversation_id: str, client_message_id: str
) -> MessageRow | None:
    query = select(MessageRow).where(
        MessageRow.conversation_id == conversation_id,
        MessageRow.client_message_id == client_message_id,
    )
    return (session.execute(query)).scalar_one_or_none()


def replies_to(session: Session, message_id: str) -> Sequence[MessageRow]:
    query = select(MessageRow).where(MessageRow.reply_to == message_id).order_by(MessageRow.seq)
    return (session.execute(query)).scalars().all()


def append_message(
    session: Session,
    conversation: ConversationRow,
    role: Role,
    text: str,
    *,
    client_message_id: str | None = None,
    reply_to: str | None = None,
    citations: Sequence[Citation] = (),
    meta: dict[str, Any] | None = None,
) -> MessageRow:
    """Add a message with the conversation's next sequence number."""
    now = utcnow()
    conversation.last_seq += 1
    conversation.updated_at = now
    row = MessageRow(
        id=new_id(),
        conversation_id=conversation.id,
        seq=conversation.last_seq,
        role=role.value,
        text=text,
        client_message_id=client_message_id,
        reply_to=reply_to,
        citations=[{"id": c.id, "title": c.title} for c in citations],
        meta=meta or {},
        created_at=now,
    )
    session.add(row)
    return row


def messages_after(
    session: Session, conversation_id: str, after_seq: int = 0, limit: int | None = None
) -> Sequence[MessageRow]:
    query = (
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id, MessageRow.seq > after_seq)
        .order_by(MessageRow.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return (session.execute(query)).scalars().all()


def recent_messages(session: Session, conversation_id: str, limit: int) -> list[MessageRow]:
    """The last ``limit`` messages, oldest first."""
    if limit <= 0:
        return []
    query = (
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
        .order_by(MessageRow.seq.desc())
        .limit(limit)
    )
    rows = list((session.execute(query)).scalars().all())
    rows.reverse()
    return rows


def append_event(
    session: Session,
    type_: str,
    payload: dict[str, Any],
    conversation_id: str | None = None,
) -> EventRow:
    row = EventRow(
        type=type_, conversation_id=conversation_id, payload=payload, created_at=utcnow()
    )
    session.add(row)
    return row


def events_of(session: Session, conversation_id: str) -> Sequence[EventRow]:
    query = (
        select(EventRow).where(EventRow.conversation_id == conversation_id).order_by(EventRow.id)
    )
    return (session.execute(query)).scalars().all()


def pseudonym_numbers(
    session: Session, conversation_id: str, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The stable number of each (kind, digest) in the conversation, allocating new ones."""
    if not wanted:
        return {}
    rows = (
        (
            session.execute(
                select(PseudonymRow).where(PseudonymRow.conversation_id == conversation_id)
            )
        )
        .scalars()
        .all()
    )
    known = {(r.kind, r.digest): r.number for r in rows}
    highest: dict[str, int] = {}
    for (kind, _digest), number in known.items():
        highest[kind] = max(highest.get(kind, 0), number)
    for kind, digest in wanted:
        if (kind, digest) in known:
            continue
        highest[kind] = highest.get(kind, 0) + 1
        known[(kind, digest)] = highest[kind]
        session.add(
            PseudonymRow(
                conversation_id=conversation_id, kind=kind, digest=digest, number=highest[kind]
            )
        )
    return {key: known[key] for key in wanted}


def count_messages(session: Session, conversation_id: str) -> int:
    query = select(func.count()).where(MessageRow.conversation_id == conversation_id)
    return int((session.execute(query)).scalar_one())
