"""Queries for the people side: users, sessions, the audit log, handoffs, notes, reviews,
approved answers and curated training examples. Plain functions of a ``Session``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.store.repository import Handle
from frontdesk.adapters.store.tables import (
    ApprovedAnswerRow,
    AuditRow,
    ConversationRow,
    HandoffRow,
    NoteRow,
    ReviewRow,
    SessionRow,
    TrainingExampleRow,
    UserRow,
)
from frontdesk.core.types import utcnow

ROLES = ("admin", "agent", "reviewer")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    role: str

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "name": self.name, "role": self.role}

    def can(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def _user(row: UserRow) -> User:
    return User(row.id, row.email, row.name, row.role)


def add_user(session: Session, user_id: str, email: str, name: str, role: str, hashed: str) -> User:
    row = UserRow(
        id=user_id,
        email=email.strip().lower(),
        name=name.strip(),
        role=role,
        password_hash=hashed,
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _user(row)


def user_by_email(session: Session, email: str) -> tuple[User, str] | None:
    row = session.execute(
        select(UserRow).where(UserRow.email == email.strip().lower(), UserRow.active.is_(True))
    ).scalar_one_or_none()
    return None if row is None else (_user(row), row.password_hash)


def set_password_hash(session: Session, user_id: str, hashed: str) -> None:
    session.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=hashed))


def users(session: Session) -> list[User]:
    rows = session.execute(select(UserRow).order_by(UserRow.email)).scalars()
    return [_user(r) for r in rows]


def names(session: Session, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(set(ids))))
    return {i: n for i, n in rows.tuples()}


def add_session(
    session: Session, token_hash: str, user_id: str, csrf: str, expires_at: datetime
) -> None:
    session.add(
        SessionRow(
            token_hash=token_hash,
            user_id=user_id,
            csrf=csrf,
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )


def session_user(session: Session, token_hash: str) -> tuple[User, str, datetime] | None:
    row = session.execute(
        select(SessionRow, UserRow)
        .join(UserRow, UserRow.id == SessionRow.user_id)
        .where(SessionRow.token_hash == token_hash, UserRow.active.is_(True))
    ).first()
    if row is None:
        return None
    stored, user = row
    return _user(user), stored.csrf, stored.expires_at


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))


def audit(
    session: Session,
    user_id: str | None,
    action: str,
    conversation_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            user_id=user_id,
            action=action,
            conversation_id=conversation_id,
            detail=detail or {},
            created_at=utcnow(),
        )
    )


def audit_entries(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(AuditRow, UserRow.name)
        .outerjoin(UserRow, UserRow.id == AuditRow.user_id)
        .order_by(AuditRow.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": row.created_at.isoformat(),
            "user": name,
            "action": row.action,
            "conversation_id": row.conversation_id,
            "detail": row.detail,
        }
        for row, name in rows
    ]


# --- handoffs and assignment -----------------------------------------------------------------


def open_handoff(
    session: Handle, conversation_id: str, reason: str, summary: dict[str, Any]
) -> None:
    session.execute(
        insert(cast(Table, HandoffRow.__table__)).values(
            conversation_id=conversation_id,
            reason=reason,
            summary=summary,
            created_at=utcnow(),
        )
    )


def latest_handoff(session: Session, conversation_id: str) -> HandoffRow | None:
    return session.execute(
        select(HandoffRow)
        .where(HandoffRow.conversation_id == conversation_id)
        .order_by(HandoffRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def close_handoff(session: Session, conversation_id: str) -> None:
    found = latest_handoff(session, conversation_id)
    if found is not None and found.closed_at is None:
        found.closed_at = utcnow()


def claim(session: Session, conversation_id: str, user_id: str, *, force: bool) -> str | None:
    """Assign the conversation to ``user_id``. Returns None when it worked, else the id of
    the user who holds it. One conditional UPDATE: of two agents taking the same
    conversation at once, exactly one matches the row."""
    condition = ConversationRow.id == conversation_id
    if not force:
        condition = condition & (
            ConversationRow.assigned_to.is_(None) | (ConversationRow.assigned_to == user_id)
        )
    result = session.execute(
        update(ConversationRow)
        .where(condition)
        .values(assigned_to=user_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    changed = cast("CursorResult[Any]", result).rowcount
    if changed:
        found = latest_handoff(session, conversation_id)
        if found is not None and found.closed_at is None:
            found.taken_by = user_id
            found.taken_at = found.taken_at or utcnow()
        return None
    holder = session.execute(
        select(ConversationRow.assigned_to).where(ConversationRow.id == conversation_id)
    ).scalar_one_or_none()
    return holder or ""


def load_by_agent(session: Handle, agent_ids: Sequence[str]) -> dict[str, int]:
    """How many unresolved conversations each agent holds."""
    counts = dict.fromkeys(agent_ids, 0)
    rows = session.execute(
        select(ConversationRow.assigned_to, func.count())
        .where(
            ConversationRow.assigned_to.in_(list(agent_ids)), ConversationRow.status != "resolved"
        )
        .group_by(ConversationRow.assigned_to)
    ).tuples()
    for agent, count in rows:
        if agent is not None:
            counts[agent] = count
    return counts


def handoff_counts(session: Session, since: datetime) -> list[tuple[str, int]]:
    rows = session.execute(
        select(HandoffRow.reason, func.count())
        .where(HandoffRow.created_at >= since)
        .group_by(HandoffRow.reason)
        .order_by(func.count().desc(), HandoffRow.reason)
    ).tuples()
    return [(reason, count) for reason, count in rows]


# --- notes ---------------------------------------------------------------------------------


def add_note(session: Session, conversation_id: str, author_id: str, text: str) -> NoteRow:
    row = NoteRow(
        conversation_id=conversation_id, author_id=author_id, text=text, created_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row


def notes(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(NoteRow, UserRow.name)
        .outerjoin(UserRow, UserRow.id == NoteRow.author_id)
        .where(NoteRow.conversation_id == conversation_id)
        .order_by(NoteRow.id)
    ).all()
    return [
        {"id": n.id, "author": name, "text": n.text, "created_at": n.created_at.isoformat()}
        for n, name in rows
    ]


# --- reviews, approved answers, training examples ---------------------------------------------


def add_review(
    session: Session,
    message_id: str,
    conversation_id: str,
    reviewer_id: str,
    rating: str,
    correction: str | None,
) -> ReviewRow:
    row = ReviewRow(
        message_id=message_id,
        conversation_id=conversation_id,
        reviewer_id=reviewer_id,
        rating=rating,
        correction=correction,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def reviewed_message_ids(session: Session) -> set[str]:
    return set(session.execute(select(ReviewRow.message_id)).scalars())


def add_approved_answer(
    session: Session,
    *,
    key: str,
    question: str,
    answer: str,
    embedder: str,
    embedding: bytes,
    review_id: int | None,
    created_by: str,
) -> ApprovedAnswerRow:
    """A new version of the approved answer for ``key``; earlier versions become inactive."""
    latest = session.execute(
        select(func.max(ApprovedAnswerRow.version)).where(ApprovedAnswerRow.key == key)
    ).scalar_one_or_none()
    session.execute(
        update(ApprovedAnswerRow).where(ApprovedAnswerRow.key == key).values(active=False)
    )
    row = ApprovedAnswerRow(
        key=key,
        question=question,
        answer=answer,
        version=(latest or 0) + 1,
        active=True,
        embedder=embedder,
        embedding=embedding,
        review_id=review_id,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def approved_answers(session: Session, *, active_only: bool) -> list[ApprovedAnswerRow]:
    query = select(ApprovedAnswerRow).order_by(ApprovedAnswerRow.key, ApprovedAnswerRow.version)
    if active_only:
        query = query.where(ApprovedAnswerRow.active.is_(True))
    return list(session.execute(query).scalars())


def set_approved_embeddings(session: Session, embedder: str, embeddings: dict[int, bytes]) -> None:
    """Store new question vectors (``embeddings`` by approved answer id) of ``embedder``."""
    for answer_id, embedding in embeddings.items():
        session.execute(
            update(ApprovedAnswerRow)
            .where(ApprovedAnswerRow.id == answer_id)
            .values(embedder=embedder, embedding=embedding)
        )


def add_training_example(
    session: Session,
    text: str,
    label: str | None,
    answer: str | None,
    review_id: int | None,
    created_by: str,
) -> None:
    session.add(
        TrainingExampleRow(
            text=text,
            label=label,
            answer=answer,
            source="review",
            review_id=review_id,
            created_by=created_by,
            created_at=utcnow(),
        )
    )


# --- the console's reads ---------------------------------------------------------------------


def queue(session: Session, view: str, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The conversations of a queue view, newest activity first, with their handoff."""
    from frontdesk.adapters.store.tables import MessageRow

    query = select(ConversationRow)
    if view == "waiting":
        query = query.where(ConversationRow.status == "waiting")
    elif view == "mine":
        query = query.where(
            ConversationRow.assigned_to == user_id, ConversationRow.status != "resolved"
        )
    else:
        query = query.where(ConversationRow.mode == "human")
    rows = list(
        session.execute(query.order_by(ConversationRow.updated_at.desc()).limit(limit)).scalars()
    )
    ids = [r.id for r in rows]
    handoffs: dict[str, HandoffRow] = {}
    if ids:
        for h in session.execute(
            select(HandoffRow).where(HandoffRow.conversation_id.in_(ids)).order_by(HandoffRow.id)
        ).scalars():
            handoffs[h.conversation_id] = h
    previews: dict[str, str] = {}
    if ids:
        last = (
            select(MessageRow.conversation_id, func.max(MessageRow.seq).label("seq"))
            .where(MessageRow.conversation_id.in_(ids), MessageRow.role == "customer")
            .group_by(MessageRow.conversation_id)
            .subquery()
        )
        for cid, text in session.execute(
            select(MessageRow.conversation_id, MessageRow.text).join(
                last,
                (MessageRow.conversation_id == last.c.conversation_id)
                & (MessageRow.seq == last.c.seq),
            )
        ).tuples():
            previews[cid] = text[:140]
    agents = names(session, [r.assigned_to for r in rows if r.assigned_to])
    items = []
    for r in rows:
        handoff = handoffs.get(r.id)
        items.append(
            {
                "id": r.id,
                "mode": r.mode,
                "status": r.status,
                "channel": r.channel,
                "assigned_to": (
                    {"id": r.assigned_to, "name": agents.get(r.assigned_to, "?")}
                    if r.assigned_to
                    else None
                ),
                "reason": handoff.reason if handoff else None,
                "waiting_since": (
                    handoff.created_at.isoformat() if handoff and r.status == "waiting" else None
                ),
                "updated_at": r.updated_at.isoformat(),
                "preview": previews.get(r.id, ""),
            }
        )
    return items


def message_rows(session: Session, conversation_id: str) -> list[Any]:
    from frontdesk.adapters.store.tables import MessageRow

    return list(
        session.execute(
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.seq)
        ).scalars()
    )


def recent_bot_messages(session: Session, limit: int) -> list[Any]:
    """Bot and customer messages of the conversations with the most recent bot replies."""
    from frontdesk.adapters.store.tables import MessageRow

    conversations = (
        select(MessageRow.conversation_id)
        .where(MessageRow.role == "bot")
        .group_by(MessageRow.conversation_id)
        .order_by(func.max(MessageRow.created_at).desc())
        .limit(limit)
        .subquery()
    )
    return list(
        session.execute(
            select(MessageRow)
            .where(MessageRow.conversation_id.in_(select(conversations.c.conversation_id)))
            .order_by(MessageRow.conversation_id, MessageRow.seq)
        ).scalars()
    )
