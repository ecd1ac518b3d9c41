"""Conversation actions: open a conversation, take a customer message through the pipeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import ConversationRow, MessageRow
from frontdesk.core.ports import Vector
from frontdesk.core.types import Conversation, ConversationId, Message, Mode, Role, Status, utcnow
from frontdesk.pipeline import context as context_stage
from frontdesk.pipeline import privacy
from frontdesk.pipeline.decide import decide
from frontdesk.pipeline.guard import guard
from frontdesk.pipeline.respond import respond
from frontdesk.pipeline.understand import understand
from frontdesk.service import Frontdesk


class ConversationNotFound(LookupError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id!r}")
        self.conversation_id = conversation_id


class InvalidMessage(ValueError):
    """The message is empty or malformed (HTTP 422)."""


class MessageTooLong(ValueError):
    """The message is over the size limit (HTTP 413)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"the message has {length} characters; the limit is {limit}")
        self.length = length
        self.limit = limit


@dataclass(frozen=True, slots=True)
class TurnResult:
    message: Message
    replies: tuple[Message, ...]
    handoff: bool
    duplicate: bool
    server_ms: float
    conversation: Conversation


def check_text(text: str, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidMessage("text must be a string")
    if len(text) > limit:
        raise MessageTooLong(len(text), limit)
    if not text.strip():
        raise InvalidMessage("the message is empty")
    if "\x00" in text:
        raise InvalidMessage("the message contains a NUL character")
    return text.strip()


async def do_create_conversation(fd: Frontdesk, channel: str) -> Conversation:
    async with fd.session() as session, session.begin():
        row = await repo.create_conversation(session, channel)
        repo.append_event(session, "conversation_opened", {"channel": channel}, row.id)
    return repo.to_conversation(row)


async def _require(session: AsyncSession, conversation_id: str) -> ConversationRow:
    row = await repo.get_conversation(session, conversation_id, for_update=True)
    if row is None:
        raise ConversationNotFound(conversation_id)
    return row


async def _pseudonymize(
    fd: Frontdesk, session: AsyncSession, conversation_id: str, text: str
) -> privacy.Pseudonymized:
    spans = privacy.detect(text)
    if not spans:
        return privacy.Pseudonymized(text, ())
    keys = [(span.kind, privacy.digest(fd.secret, span.kind, span.value)) for span in spans]
    numbers = await repo.pseudonym_numbers(session, conversation_id, keys)
    tokens = {
        span: privacy.token(span.kind, numbers[key]) for span, key in zip(spans, keys, strict=True)
    }
    return privacy.replace(text, spans, tokens)


async def do_receive_customer_message(
    fd: Frontdesk, conversation_id: ConversationId, text: str, client_message_id: str | None
) -> TurnResult:
    """Store the message (pseudonymized), run the pipeline, store and publish the reply.

    A ``client_message_id`` seen before returns the stored message and its replies, unless the
    earlier attempt stopped before replying, in which case the reply is produced now.
    """
    started = time.perf_counter()
    text = check_text(text, fd.settings.max_message_chars)
    # Text without personal data is stored as it is: its query vector can be computed while
    # the message is written. Text with personal data is embedded only once pseudonymized.
    early = None if privacy.detect(text) else asyncio.ensure_future(fd.embedder.embed_one(text))
    try:
        return await _turn(fd, conversation_id, text, client_message_id, started, early)
    finally:
        if early is not None and not early.done():
            early.cancel()


async def _turn(
    fd: Frontdesk,
    conversation_id: ConversationId,
    text: str,
    client_message_id: str | None,
    started: float,
    early: asyncio.Future[Vector] | None,
) -> TurnResult:
    async with fd.conversation_lock(conversation_id), fd.session() as session:
        async with session.begin():
            conversation = await _require(session, conversation_id)
            existing = (
                await repo.find_by_client_id(session, conversation_id, client_message_id)
                if client_message_id
                else None
            )
            if existing is not None:
                replies = await repo.replies_to(session, existing.id)
                if replies or conversation.mode != Mode.BOT.value:
                    return _result(conversation, existing, replies, started, duplicate=True)
                customer = existing
            else:
                clean = await _pseudonymize(fd, session, conversation_id, text)
                customer = repo.append_message(
                    session,
                    conversation,
                    Role.CUSTOMER,
                    clean.text,
                    client_message_id=client_message_id,
                    meta={"pii": list(clean.kinds)} if clean.kinds else {},
                )
                repo.append_event(
                    session,
                    "message_received",
                    {"seq": customer.seq, "pii": list(clean.kinds), "chars": len(clean.text)},
                    conversation_id,
                )
            recent = (
                await repo.recent_messages(session, conversation_id, fd.settings.history_turns + 1)
                if conversation.mode == Mode.BOT.value
                else []
            )
        message = repo.to_message(customer)
        if existing is None:
            await fd.bus.publish(conversation_id, {"type": "message", "message": message.public()})
        if conversation.mode != Mode.BOT.value:
            return _result(conversation, customer, [], started, duplicate=existing is not None)
        vector = early if early is not None and customer.text == text else None
        reply = await _reply(fd, session, conversation, customer, recent, vector)
    for row in reply:
        await fd.bus.publish(
            conversation_id, {"type": "message", "message": repo.to_message(row).public()}
        )
    handoff = conversation.mode == Mode.HUMAN.value
    if handoff:
        await fd.bus.publish(
            conversation_id,
            {"type": "conversation", "mode": conversation.mode, "status": conversation.status},
        )
    return _result(conversation, customer, reply, started, duplicate=existing is not None)


async def _reply(
    fd: Frontdesk,
    session: AsyncSession,
    conversation: ConversationRow,
    customer: MessageRow,
    recent: Sequence[MessageRow],
    vector: asyncio.Future[Vector] | None,
) -> list[MessageRow]:
    """Run context -> understand -> decide -> respond -> guard, then write the reply.

    The caller holds the conversation's lock, so ``conversation`` is current."""
    settings = fd.settings
    conversation_id = conversation.id
    context = context_stage.build(
        repo.to_conversation(conversation),
        [repo.to_message(row) for row in recent if row.id != customer.id],
        settings.history_turns,
    )
    query_vector = await (vector if vector is not None else fd.embedder.embed_one(customer.text))
    passages = fd.retriever.search_vector(customer.text, query_vector, settings.retrieval_top_k)
    understanding = understand(customer.text, passages, fd.guidelines)
    decision = decide(context, understanding, fd.guidelines, settings.answer_threshold)
    open_now = fd.guidelines.working_hours.is_open(utcnow())
    draft = respond(decision, understanding, fd.guidelines, open_now=open_now)
    checked = guard(draft, fd.guidelines)
    meta: dict[str, Any] = {
        "action": decision.action.value,
        "reason": decision.reason,
        "confidence": round(understanding.confidence, 4),
        "sentiment": round(understanding.sentiment, 4),
        "passages": [p.chunk_id for p in understanding.passages[:3]],
    }
    if checked.interventions:
        meta["interventions"] = list(checked.interventions)
    async with session.begin():
        conversation = await _require(session, conversation_id)
        bot = repo.append_message(
            session,
            conversation,
            Role.BOT,
            checked.draft.text,
            reply_to=customer.id,
            citations=checked.draft.citations,
            meta=meta,
        )
        conversation.state = decision.state
        repo.append_event(
            session,
            "reply_sent",
            {
                "seq": bot.seq,
                "action": decision.action.value,
                "confidence": meta["confidence"],
                "citations": [c.id for c in checked.draft.citations],
            },
            conversation_id,
        )
        for intervention in checked.interventions:
            repo.append_event(
                session,
                "guard_intervened",
                {"check": intervention, "seq": bot.seq},
                conversation_id,
            )
        if checked.draft.handoff:
            conversation.mode = Mode.HUMAN.value
            conversation.status = Status.WAITING.value
            repo.append_event(
                session, "handoff_requested", {"reason": decision.reason}, conversation_id
            )
    return [bot]


def _result(
    conversation: ConversationRow,
    customer: MessageRow,
    replies: Any,
    started: float,
    *,
    duplicate: bool,
) -> TurnResult:
    return TurnResult(
        message=repo.to_message(customer),
        replies=tuple(repo.to_message(row) for row in replies),
        handoff=conversation.mode == Mode.HUMAN.value,
        duplicate=duplicate,
        server_ms=(time.perf_counter() - started) * 1000,
        conversation=repo.to_conversation(conversation),
    )


async def get_conversation_with_messages(
    fd: Frontdesk, conversation_id: str, after_seq: int = 0
) -> tuple[Conversation, list[Message]]:
    async with fd.session() as session:
        row = await repo.get_conversation(session, conversation_id)
        if row is None:
            raise ConversationNotFound(conversation_id)
        messages = await repo.messages_after(session, conversation_id, after_seq)
        return repo.to_conversation(row), [repo.to_message(m) for m in messages]
