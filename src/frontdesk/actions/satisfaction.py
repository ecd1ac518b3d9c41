"""Ending a conversation and rating it: the customer ends the chat, the bot resolves a
conversation left idle, and the customer gives a satisfaction score (CSAT) once it is resolved.

A rating is attributed to who resolved the conversation (the bot, an agent, or the customer
who left a handoff unfinished) and to what served it last: the flow, the cited article or the
approved answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError, pseudonyms
from frontdesk.actions.console import announce
from frontdesk.actions.conversations import ConversationNotFound
from frontdesk.adapters.store import people
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import ConversationRow, CsatRow, EventRow, MessageRow
from frontdesk.core.types import Conversation, Mode, Role, Status, utcnow
from frontdesk.service import Frontdesk

MAX_COMMENT_CHARS = 1000


class CsatError(ActionError):
    """A rating that cannot be stored; ``code`` and ``status`` go to the API."""


@dataclass(frozen=True, slots=True)
class Rating:
    conversation_id: str
    score: int
    comment: str | None
    resolved_by: str
    agent_id: str | None
    flow: str | None
    article: str | None
    duplicate: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "score": self.score,
            "comment": self.comment,
            "resolved_by": self.resolved_by,
            "duplicate": self.duplicate,
        }


async def _announce_status(fd: Frontdesk, conversation: Conversation) -> None:
    await fd.bus.publish(
        conversation.id,
        {
            "type": "conversation",
            "mode": conversation.mode.value,
            "status": conversation.status.value,
        },
    )


async def do_end_conversation(fd: Frontdesk, conversation_id: str) -> Conversation:
    """The customer ends the chat (the widget's "End chat"). With the bot serving, the bot
    resolved it; waiting for a person, the customer left the handoff unfinished. Ending an
    already resolved conversation changes nothing."""

    def work(session: Session) -> tuple[Conversation, bool]:
        conversation = repo.get_conversation(session, conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        if conversation.status is Status.RESOLVED:
            return conversation, False
        by = "bot" if conversation.mode is Mode.BOT else "customer"
        state = {k: v for k, v in conversation.state.items() if k not in ("flows", "offered_human")}
        repo.update_conversation(
            session,
            conversation_id,
            mode=Mode.BOT.value,
            status=Status.RESOLVED.value,
            assigned_to=None,
            state=state,
        )
        people.close_handoff(session, conversation_id)
        repo.append_event(
            session, "conversation_resolved", {"by": by, "how": "customer_ended"}, conversation_id
        )
        changed = repo.get_conversation(session, conversation_id)
        assert changed is not None
        return changed, conversation.mode is Mode.HUMAN

    changed, was_human = await fd.db.run(work)
    await _announce_status(fd, changed)
    if was_human:
        await announce(fd, conversation_id)
    return changed


def _attribution(session: Session, conversation_id: str) -> dict[str, str | None]:
    """Who resolved the conversation last, and the flow, article or approved answer that
    served the customer last."""
    resolved = (
        session.execute(
            select(EventRow.payload)
            .where(
                EventRow.conversation_id == conversation_id,
                EventRow.type == "conversation_resolved",
            )
            .order_by(EventRow.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        or {}
    )
    flow = article = None
    replies = session.execute(
        select(MessageRow.meta, MessageRow.citations)
        .where(MessageRow.conversation_id == conversation_id, MessageRow.role == Role.BOT.value)
        .order_by(MessageRow.seq.desc())
        .limit(20)
    ).tuples()
    for meta, citations in replies:
        if flow is None and meta.get("flow"):
            flow = str(meta["flow"])
        if article is None and citations:
            article = str(citations[0]["id"])
        if flow is not None and article is not None:
            break
    return {
        "resolved_by": str(resolved.get("by") or "bot"),
        "agent": resolved.get("agent"),
        "flow": flow,
        "article": article,
    }


def _row_rating(row: CsatRow, duplicate: bool) -> Rating:
    return Rating(
        conversation_id=row.conversation_id,
        score=row.score,
        comment=row.comment,
        resolved_by=row.resolved_by,
        agent_id=row.agent_id,
        flow=row.flow,
        article=row.article,
        duplicate=duplicate,
    )


async def do_submit_csat(
    fd: Frontdesk, conversation_id: str, score: int, comment: str | None
) -> Rating:
    """Store the customer's rating of a resolved conversation, once. The same rating sent
    again (a retried request) returns the stored one; a different second rating is refused."""
    if not 1 <= score <= 5:
        raise CsatError("invalid_score", "the score must be a whole number from 1 to 5", 422)
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT_CHARS:
        raise CsatError(
            "comment_too_long", f"the comment is over {MAX_COMMENT_CHARS} characters", 413
        )
    found = pseudonyms.find(fd, text) if text else None

    def work(session: Session) -> Rating:
        status = session.execute(
            select(ConversationRow.status).where(ConversationRow.id == conversation_id)
        ).scalar_one_or_none()
        if status is None:
            raise ConversationNotFound(conversation_id)
        existing = session.get(CsatRow, conversation_id)
        clean = None
        if text is not None and found is not None:
            clean = pseudonyms.apply(session, conversation_id, text, found).text
        if existing is not None:
            if existing.score == score and existing.comment == clean:
                return _row_rating(existing, duplicate=True)
            raise CsatError("csat_already_given", "this conversation has been rated already")
        if status != Status.RESOLVED.value:
            raise CsatError(
                "not_resolved", "a conversation is rated once it is resolved; this one is open"
            )
        who = _attribution(session, conversation_id)
        row = CsatRow(
            conversation_id=conversation_id,
            score=score,
            comment=clean,
            resolved_by=who["resolved_by"],
            agent_id=who["agent"],
            flow=who["flow"],
            article=who["article"],
            created_at=utcnow(),
        )
        session.add(row)
        repo.append_event(
            session,
            "csat_submitted",
            {
                "score": score,
                "commented": clean is not None,
                "resolved_by": row.resolved_by,
                "agent": row.agent_id,
                "flow": row.flow,
                "article": row.article,
            },
            conversation_id,
        )
        return _row_rating(row, duplicate=False)

    return await fd.db.run(work)


async def csat_of(fd: Frontdesk, conversation_id: str) -> Rating | None:
    def work(session: Session) -> Rating | None:
        row = session.get(CsatRow, conversation_id)
        return None if row is None else _row_rating(row, duplicate=False)

    return await fd.db.run(work)


async def resolve_idle(fd: Frontdesk, limit: int = 500) -> int:
    """Resolve bot conversations nobody wrote in for ``analytics.resolve_idle_minutes``
    (only those where the customer wrote at least once). Returns how many it resolved."""
    minutes = fd.guidelines.analytics.resolve_idle_minutes
    if minutes <= 0:
        return 0
    cutoff = utcnow() - timedelta(minutes=minutes)

    def work(session: Session) -> list[Conversation]:
        ids = (
            session.execute(
                select(ConversationRow.id)
                .where(
                    ConversationRow.status == Status.OPEN.value,
                    ConversationRow.mode == Mode.BOT.value,
                    ConversationRow.updated_at < cutoff,
                    ConversationRow.last_seq > 0,
                )
                .order_by(ConversationRow.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        done = []
        for conversation_id in ids:
            repo.update_conversation(session, conversation_id, status=Status.RESOLVED.value)
            repo.append_event(
                session, "conversation_resolved", {"by": "bot", "how": "idle"}, conversation_id
            )
            changed = repo.get_conversation(session, conversation_id)
            assert changed is not None
            done.append(changed)
        return done

    resolved = await fd.db.run(work)
    for conversation in resolved:
        await _announce_status(fd, conversation)
    return len(resolved)
