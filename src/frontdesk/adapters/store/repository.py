"""Queries over the tables, as plain functions of a ``Session`` or a Core ``Connection``; the
caller runs them inside one transaction (``Database.run`` or ``Database.run_core``). They use
Core statements only and return domain records, so no ORM state crosses threads, and a turn's
transactions can skip the ORM session altogether."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, Update, bindparam, insert, select, update
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

CONVERSATIONS = cast(Table, ConversationRow.__table__)
MESSAGES = cast(Table, MessageRow.__table__)
EVENTS = cast(Table, EventRow.__table__)
PSEUDONYMS = cast(Table, PseudonymRow.__table__)

# What the functions below run their statements on: an ORM session, or a Core connection.
Handle = Session | Connection


# Hot statements are built once with named parameters: executing them skips building and
# hashing a new statement for every message.
_INSERT_CONVERSATION = insert(CONVERSATIONS)
_INSERT_MESSAGE = insert(MESSAGES)
_INSERT_EVENT = insert(EVENTS)
_GET_CONVERSATION = select(CONVERSATIONS).where(CONVERSATIONS.c.id == bindparam("cid"))
_BY_CLIENT_ID = select(MESSAGES).where(
    MESSAGES.c.conversation_id == bindparam("cid"),
    MESSAGES.c.client_message_id == bindparam("client_id"),
)
_RECENT = (
    select(MESSAGES)
    .where(MESSAGES.c.conversation_id == bindparam("cid"))
    .order_by(MESSAGES.c.seq.desc())
    .limit(bindparam("n"))
)
_CLAIMS: dict[tuple[str, ...], Update] = {}


def _claim_statement(keys: tuple[str, ...]) -> Update:
    statement = _CLAIMS.get(keys)
    if statement is None:
        statement = (
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.id == bindparam("cid"))
            .values(
                last_seq=CONVERSATIONS.c.last_seq + 1,
                updated_at=bindparam("now"),
                **{key: bindparam(f"new_{key}") for key in keys},
            )
            .returning(*CONVERSATIONS.c)
        )
        _CLAIMS[keys] = statement
    return statement


def new_id() -> str:
    return str(uuid.uuid4())


def to_conversation(row: Mapping[Any, Any]) -> Conversation:
    return Conversation(
        id=ConversationId(row["id"]),
        channel=row["channel"],
        mode=Mode(row["mode"]),
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        customer_id=CustomerId(row["customer_id"]) if row["customer_id"] else None,
        state=dict(row["state"] or {}),
        assigned_to=row.get("assigned_to"),
    )


def to_message(row: Mapping[Any, Any]) -> Message:
    return Message(
        id=MessageId(row["id"]),
        conversation_id=ConversationId(row["conversation_id"]),
        seq=row["seq"],
        role=Role(row["role"]),
        text=row["text"],
        created_at=row["created_at"],
        client_message_id=row["client_message_id"],
        reply_to=MessageId(row["reply_to"]) if row["reply_to"] else None,
        citations=tuple(
            Citation(id=ArticleId(c["id"]), title=c["title"]) for c in row["citations"]
        ),
    )


def create_conversation(session: Handle, channel: str) -> Conversation:
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(),
        "channel": channel,
        "mode": Mode.BOT.value,
        "status": Status.OPEN.value,
        "customer_id": None,
        "state": {},
        "last_seq": 0,
        "created_at": now,
        "updated_at": now,
    }
    session.execute(_INSERT_CONVERSATION, values)
    return to_conversation(values)


def get_conversation(session: Handle, conversation_id: str) -> Conversation | None:
    row = session.execute(_GET_CONVERSATION, {"cid": conversation_id}).mappings().one_or_none()
    return to_conversation(row) if row is not None else None


def claim_seq(
    session: Handle, conversation_id: str, **changes: Any
) -> tuple[Conversation, int] | None:
    """Take the conversation's next message number, applying ``changes`` (state, mode,
    status) in the same statement. The row stays locked until the transaction ends (on
    PostgreSQL), so two workers can never take the same number. None: no such conversation."""
    unknown = set(changes) - {"state", "mode", "status", "customer_id", "assigned_to"}
    if unknown:
        raise ValueError(f"claim_seq cannot change {sorted(unknown)}")
    keys = tuple(sorted(changes))
    params = {"cid": conversation_id, "now": utcnow()}
    params.update({f"new_{key}": changes[key] for key in keys})
    row = session.execute(_claim_statement(keys), params).mappings().one_or_none()
    if row is None:
        return None
    return to_conversation(row), int(row["last_seq"])


def update_conversation(session: Handle, conversation_id: str, **changes: Any) -> None:
    """Change mode, status or assignment without taking a message number."""
    session.execute(
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id)
        .values(updated_at=utcnow(), **changes)
    )


def insert_message(
    session: Handle,
    conversation_id: str,
    seq: int,
    role: Role,
    text: str,
    *,
    client_message_id: str | None = None,
    reply_to: str | None = None,
    citations: Sequence[Citation] = (),
    meta: dict[str, Any] | None = None,
) -> Message:
    values: dict[str, Any] = {
        "id": new_id(),
        "conversation_id": conversation_id,
        "seq": seq,
        "role": role.value,
        "text": text,
        "client_message_id": client_message_id,
        "reply_to": reply_to,
        "citations": [{"id": c.id, "title": c.title} for c in citations],
        "meta": meta or {},
        "created_at": utcnow(),
    }
    session.execute(_INSERT_MESSAGE, values)
    return to_message(values)


def append_message(
    session: Handle,
    conversation_id: str,
    role: Role,
    text: str,
    **fields: Any,
) -> Message:
    """Add a message with the conversation's next number (raises LookupError if unknown)."""
    claimed = claim_seq(session, conversation_id)
    if claimed is None:
        raise LookupError(conversation_id)
    return insert_message(session, conversation_id, claimed[1], role, text, **fields)


def find_by_client_id(
    session: Handle, conversation_id: str, client_message_id: str
) -> Message | None:
    params = {"cid": conversation_id, "client_id": client_message_id}
    row = session.execute(_BY_CLIENT_ID, params).mappings().one_or_none()
    return to_message(row) if row is not None else None


def replies_to(session: Handle, conversation_id: str, message_id: str) -> list[Message]:
    query = (
        select(MESSAGES)
        .where(MESSAGES.c.conversation_id == conversation_id, MESSAGES.c.reply_to == message_id)
        .order_by(MESSAGES.c.seq)
    )
    return [to_message(row) for row in session.execute(query).mappings()]


def messages_after(
    session: Handle, conversation_id: str, after_seq: int = 0, limit: int | None = None
) -> list[Message]:
    query = (
        select(MESSAGES)
        .where(MESSAGES.c.conversation_id == conversation_id, MESSAGES.c.seq > after_seq)
        .order_by(MESSAGES.c.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return [to_message(row) for row in session.execute(query).mappings()]


def recent_messages(session: Handle, conversation_id: str, limit: int) -> list[Message]:
    """The last ``limit`` messages, oldest first."""
    if limit <= 0:
        return []
    result = session.execute(_RECENT, {"cid": conversation_id, "n": limit})
    rows = [to_message(row) for row in result.mappings()]
    rows.reverse()
    return rows


def append_events(
    session: Handle, events: Sequence[tuple[str, dict[str, Any]]], conversation_id: str | None
) -> None:
    """Append domain events (type, payload) in one statement."""
    if not events:
        return
    now = utcnow()
    rows = [
        {"type": kind, "conversation_id": conversation_id, "payload": payload, "created_at": now}
        for kind, payload in events
    ]
    session.execute(_INSERT_EVENT, rows)


def append_event(
    session: Handle, type_: str, payload: dict[str, Any], conversation_id: str | None = None
) -> None:
    append_events(session, [(type_, payload)], conversation_id)


def pseudonym_numbers(
    session: Handle,
    conversation_id: str,
    wanted: Sequence[tuple[str, str]],
    sealed: Mapping[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], int]:
    """The stable number of each (kind, digest) in the conversation, allocating new ones.

    ``sealed`` holds the sealed raw value of each (kind, digest): the vault entry a tool opens
    when it needs the value itself (an email to look a customer up)."""
    if not wanted:
        return {}
    rows = session.execute(
        select(PseudonymRow.kind, PseudonymRow.digest, PseudonymRow.number).where(
            PseudonymRow.conversation_id == conversation_id
        )
    ).tuples()
    known = {(kind, digest): number for kind, digest, number in rows}
    highest: dict[str, int] = {}
    for (kind, _digest), number in known.items():
        highest[kind] = max(highest.get(kind, 0), number)
    new: list[dict[str, Any]] = []
    for kind, digest in wanted:
        if (kind, digest) in known:
            continue
        highest[kind] = highest.get(kind, 0) + 1
        known[(kind, digest)] = highest[kind]
        new.append(
            {
                "conversation_id": conversation_id,
                "kind": kind,
                "digest": digest,
                "number": highest[kind],
                "sealed": (sealed or {}).get((kind, digest)),
            }
        )
    if new:
        session.execute(insert(PSEUDONYMS), new)
    return {key: known[key] for key in wanted}


def vault_entries(session: Handle, conversation_id: str) -> dict[tuple[str, int], str]:
    """The sealed raw value behind each token ``(kind, number)`` of a conversation that still
    has one (retention may have purged it)."""
    rows = session.execute(
        select(PseudonymRow.kind, PseudonymRow.number, PseudonymRow.sealed).where(
            PseudonymRow.conversation_id == conversation_id, PseudonymRow.sealed.is_not(None)
        )
    ).tuples()
    return {(kind, number): sealed for kind, number, sealed in rows if sealed is not None}


def pseudonym_entry(
    session: Handle, conversation_id: str, kind: str, number: int
) -> tuple[str, str | None] | None:
    """The digest and the sealed value behind the token ``<KIND_number>`` in a conversation."""
    row = session.execute(
        select(PseudonymRow.digest, PseudonymRow.sealed).where(
            PseudonymRow.conversation_id == conversation_id,
            PseudonymRow.kind == kind,
            PseudonymRow.number == number,
        )
    ).first()
    return None if row is None else (row[0], row[1])
