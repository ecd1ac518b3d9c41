"""Conversation actions: open a conversation, take a customer message through the pipeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from frontdesk.actions import model_turn, pseudonyms
from frontdesk.actions.console import HandoffPlan, announce, apply_handoff, summarize
from frontdesk.adapters.store import repository as repo
from frontdesk.company.experiments import assign
from frontdesk.company.guidelines import Guidelines
from frontdesk.core.ports import Vector
from frontdesk.core.types import (
    ArticleId,
    Citation,
    Conversation,
    ConversationId,
    Message,
    Mode,
    Passage,
    Role,
    Status,
    utcnow,
)
from frontdesk.flows import engine as flow_engine
from frontdesk.knowledge.retrieval import Retriever
from frontdesk.learning.intents import Floats, Prediction
from frontdesk.pipeline import context as context_stage
from frontdesk.pipeline import privacy
from frontdesk.pipeline.decide import Action, Decision, decide, overrides
from frontdesk.pipeline.guard import Guarded, guard
from frontdesk.pipeline.respond import Draft, respond
from frontdesk.pipeline.understand import (
    Reading,
    intent_articles,
    needs_knowledge,
    read,
    understand,
)
from frontdesk.service import Frontdesk, Profile


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
    running = fd.experiment

    def work(session: Connection) -> Conversation:
        conversation = repo.create_conversation(session, channel)
        repo.append_event(session, "conversation_opened", {"channel": channel}, conversation.id)
        if running is not None:
            # An A/B experiment runs: the conversation gets its variant for good.
            variant = assign(running.spec, conversation.id)
            state = {"experiment": {"name": running.name, "variant": variant}}
            repo.update_conversation(session, conversation.id, state=state)
            repo.append_event(
                session,
                "experiment_assigned",
                {"experiment": running.name, "variant": variant},
                conversation.id,
            )
            conversation = replace(conversation, state=state)
        return conversation

    return await fd.db.run_core(work)


@dataclass(frozen=True, slots=True)
class _Received:
    """What the first transaction of a turn stored or found."""

    conversation: Conversation
    message: Message
    replies: tuple[Message, ...]
    history: tuple[Message, ...]
    duplicate: bool

    @property
    def needs_reply(self) -> bool:
        return self.conversation.mode is Mode.BOT and not self.replies


def _receive(
    session: Connection,
    fd: Frontdesk,
    conversation_id: str,
    text: str,
    client_message_id: str | None,
    found: pseudonyms.Found,
) -> _Received:
    """Transaction 1: store the pseudonymized message once (idempotent by client id)."""
    existing = (
        repo.find_by_client_id(session, conversation_id, client_message_id)
        if client_message_id
        else None
    )
    if existing is not None:
        conversation = repo.get_conversation(session, conversation_id)
        assert conversation is not None  # the message belongs to it
        customer = existing
        replies = tuple(repo.replies_to(session, conversation_id, existing.id))
    else:
        claimed = repo.claim_seq(session, conversation_id)
        if claimed is None:
            raise ConversationNotFound(conversation_id)
        conversation, seq = claimed
        awaited = flow_engine.awaited_slot(
            conversation.state, fd.profile_for(conversation.state).flows
        )
        found = pseudonyms.answering(fd, text, found, awaited)
        clean = pseudonyms.apply(session, conversation_id, text, found)
        customer = repo.insert_message(
            session,
            conversation_id,
            seq,
            Role.CUSTOMER,
            clean.text,
            client_message_id=client_message_id,
            meta={"pii": list(clean.kinds)} if clean.kinds else {},
        )
        replies = ()
        payload = {"seq": seq, "pii": list(clean.kinds), "chars": len(clean.text)}
        repo.append_event(session, "message_received", payload, conversation_id)
        if (
            conversation.mode is Mode.HUMAN
            and conversation.state.get("followup_offered")
            and privacy.EMAIL in clean.kinds
        ):
            replies = (_follow_up(session, conversation, customer),)
    history: tuple[Message, ...] = ()
    history_turns = fd.settings.history_turns
    if conversation.mode is Mode.BOT and not replies and history_turns:
        recent = repo.recent_messages(session, conversation_id, history_turns + 1)
        history = tuple(m for m in recent if m.id != customer.id)  # context.build trims
    return _Received(conversation, customer, replies, history, duplicate=existing is not None)


FOLLOW_UP_ACK = (
    "Thanks. A person from our team will follow up by email at the address you gave, within "
    "one business day."
)


def _follow_up(session: Connection, conversation: Conversation, customer: Message) -> Message:
    """Outside working hours, the customer left an email for a follow-up: acknowledge it and
    record the request (the address itself stays in the vault, behind its token)."""
    token = privacy.TOKEN_RE.search(customer.text)
    state = dict(conversation.state)
    state.pop("followup_offered", None)
    claimed = repo.claim_seq(session, conversation.id, state=state)
    assert claimed is not None
    _, seq = claimed
    ack = repo.insert_message(
        session, conversation.id, seq, Role.SYSTEM, FOLLOW_UP_ACK, reply_to=customer.id
    )
    repo.append_event(
        session,
        "followup_requested",
        {"email_token": token.group() if token else None},
        conversation.id,
    )
    return ack


def _store_reply(
    session: Connection,
    conversation_id: str,
    received: _Received,
    decision: Decision,
    checked: Guarded,
    meta: dict[str, Any],
    plan: HandoffPlan | None,
    extra: Sequence[tuple[str, dict[str, Any]]] = (),
) -> tuple[Message, Conversation]:
    """Transaction 2: the bot's reply, the carried state, a handoff, and their events."""
    customer = received.message
    state = dict(decision.state)
    text = checked.draft.text
    changes: dict[str, Any] = {}
    if plan is not None:
        changes.update(mode=Mode.HUMAN.value, status=Status.WAITING.value)
        assigned, text = apply_handoff(session, conversation_id, plan, text)
        changes.update(assigned)
        if not plan.open_now:
            state["followup_offered"] = True
    elif decision.action is Action.GOODBYE:
        # The customer said goodbye to the bot: the conversation is resolved (and the widget
        # asks for a rating). A handoff earlier in it means the bot did not resolve it alone;
        # the rollup reads that from the events.
        changes["status"] = Status.RESOLVED.value
    elif received.conversation.status is Status.RESOLVED:
        changes["status"] = Status.OPEN.value  # the customer came back: reopened
    changes["state"] = state
    claimed = repo.claim_seq(session, conversation_id, **changes)
    if claimed is None:
        raise ConversationNotFound(conversation_id)
    conversation, seq = claimed
    bot = repo.insert_message(
        session,
        conversation_id,
        seq,
        Role.BOT,
        text,
        reply_to=customer.id,
        citations=checked.draft.citations,
        meta=meta,
    )
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "reply_sent",
            {
                "seq": seq,
                "action": decision.action.value,
                "reason": decision.reason,
                "intent": meta.get("intent"),
                "confidence": meta["confidence"],
                "sentiment": meta["sentiment"],
                "flow": meta.get("flow"),
                "citations": [c.id for c in checked.draft.citations],
            },
        )
    ]
    events += [("guard_intervened", {"check": i, "seq": seq}) for i in checked.interventions]
    events += [(kind, {**payload, "seq": seq}) for kind, payload in extra]
    if plan is not None:
        events.append(
            ("handoff_requested", {"reason": plan.reason, "assigned_to": changes["assigned_to"]})
        )
    resolved_before = received.conversation.status is Status.RESOLVED
    if resolved_before and plan is None and decision.action is not Action.GOODBYE:
        events.append(("conversation_reopened", {}))
    if decision.action is Action.GOODBYE and plan is None and not resolved_before:
        events.append(("conversation_resolved", {"by": "bot", "how": "goodbye"}))
    repo.append_events(session, events, conversation_id)
    return bot, conversation


async def do_receive_customer_message(
    fd: Frontdesk, conversation_id: ConversationId, text: str, client_message_id: str | None
) -> TurnResult:
    """Store the message (pseudonymized), run the pipeline, store and publish the reply.

    A ``client_message_id`` seen before returns the stored message and its replies, unless the
    earlier attempt stopped before replying, in which case the reply is produced now.
    """
    started = time.perf_counter()
    text = check_text(text, fd.settings.max_message_chars)
    found = pseudonyms.find(fd, text)
    # Text without personal data is stored as it is: its query vector is computed while the
    # message is written. Text with personal data is embedded only once pseudonymized, and so
    # is text that may turn out to be a bare name answering "What's your name?".
    lookup = needs_knowledge(text, fd.guidelines)
    understood = fd.understood(text)
    early = (
        None
        if found.spans or not lookup or pseudonyms.could_be_name(text)
        else asyncio.ensure_future(fd.embedder.embed_one(understood))
    )
    if early is not None:
        # This turn of the loop runs embed_one up to its queue; the next, which run_core
        # (SQLite) or the connection's checkout (PostgreSQL) yields before the transaction,
        # runs the encoder's task, which hands the batch to its thread. So the question is
        # embedded while the message is stored (tests/test_store_inline.py checks both).
        await asyncio.sleep(0)
    try:
        async with fd.conversation_lock(conversation_id):
            received = await fd.db.run_core(
                lambda session: _receive(
                    session, fd, conversation_id, text, client_message_id, found
                )
            )
            if not received.duplicate:
                await _publish_message(fd, received.message)
                for ack in received.replies:
                    await _publish_message(fd, ack)
                if received.conversation.mode is Mode.HUMAN:
                    await announce(fd, conversation_id)  # the agent's console refreshes
            if not received.needs_reply:
                return _result(received, received.conversation, received.replies, started)
            stored = received.message.text
            query = understood if stored == text else fd.understood(stored)
            vector = None
            prepared = None
            if lookup:
                if early is None or query != understood:
                    if early is not None:
                        early.cancel()  # the stored text differs from the typed one
                    early = asyncio.ensure_future(fd.embedder.embed_one(query))
                # While the encoder works (an embedding started here, for text that was
                # pseudonymized, is only queued at the await below: no overlap then).
                prepared = _prepare(fd, received, query)
                vector = await early
            decision, checked, meta, events = await _think(fd, received, vector, query, prepared)
            plan = None
            if checked.draft.handoff:
                plan = HandoffPlan(
                    reason=decision.reason,
                    summary=summarize(
                        received.conversation,
                        received.history,
                        received.message.text,
                        decision.state,
                        meta,
                    ),
                    online_agents=fd.online_agents(),
                    minutes_per_conversation=fd.guidelines.escalation.minutes_per_conversation,
                    open_now=fd.guidelines.working_hours.is_open(utcnow()),
                )
            reply, conversation = await fd.db.run_core(
                lambda session: _store_reply(
                    session, conversation_id, received, decision, checked, meta, plan, events
                )
            )
    finally:
        if early is not None and not early.done():
            early.cancel()
    await _publish_message(fd, reply)
    if conversation.mode is Mode.HUMAN or conversation.status is not received.conversation.status:
        await fd.bus.publish(
            conversation_id,
            {
                "type": "conversation",
                "mode": conversation.mode.value,
                "status": conversation.status.value,
            },
        )
    if conversation.mode is Mode.HUMAN:
        await announce(fd, conversation_id)
    return _result(received, conversation, (reply,), started)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The parts of a turn that need the text but not its vector, worked out while the
    encoder embeds it: the guidelines' patterns, mood and entities, the BM25 scores and the
    intent model's n-gram head."""

    profile: Profile
    reading: Reading
    retriever: Retriever  # the index the BM25 scores are of
    lexical: Vector
    ngrams: Floats | None


def _earlier(received: _Received) -> list[str]:
    return [m.text for m in received.history if m.role is Role.CUSTOMER]


def _prepare(fd: Frontdesk, received: _Received, text: str) -> _Prepared:
    profile = fd.profile_for(received.conversation.state)  # live, or its A/B variant
    reading = read(
        text,
        profile.guidelines,
        earlier=_earlier(received),
        catalog=fd.catalog,
        typed=received.message.text,
    )
    retriever = fd.retriever
    ngrams = profile.intents.ngram_probabilities([text]) if profile.intents else None
    return _Prepared(profile, reading, retriever, retriever.lexical(text), ngrams)


async def _think(
    fd: Frontdesk,
    received: _Received,
    vector: Vector | None,
    text: str,
    prepared: _Prepared | None = None,
) -> tuple[Decision, Guarded, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """context -> understand -> (flow step | decide -> respond) -> guard. Only a flow's tool
    calls touch the database; everything else is in memory. ``prepared``: :func:`_prepare`
    of ``text``, done while its vector was computed."""
    settings = fd.settings
    profile = prepared.profile if prepared else fd.profile_for(received.conversation.state)
    guidelines = profile.guidelines
    context = context_stage.build(received.conversation, received.history, settings.history_turns)
    passages = []
    intent = None
    threshold = settings.answer_threshold
    by_intent = False
    if vector is not None:
        lexical = prepared.lexical if prepared and prepared.retriever is fd.retriever else None
        passages = fd.retriever.search_vector(text, vector, settings.retrieval_top_k, lexical)
        if profile.intents is not None:
            ngrams = prepared.ngrams if prepared else None
            intent = await profile.intents.predict_message(text, vector, ngrams)
            passages, by_intent = _by_intent(fd, text, vector, lexical, passages, intent, profile)
        if by_intent:
            threshold = min(threshold, settings.agreed_answer_threshold)
    understanding = understand(
        text,
        passages,
        guidelines,
        intent=intent,
        earlier=_earlier(received),
        catalog=fd.catalog,
        typed=received.message.text,
        reading=prepared.reading if prepared else None,
    )
    open_now = guidelines.working_hours.is_open(utcnow())
    # A request for a person, an answer to the offer of one, a sensitive topic or frustration
    # goes to decide(); everything else meets the flows and the approved answers first.
    first = not overrides(context, understanding, guidelines)
    flow = None
    if first:
        flow = await flow_engine.handle(
            _runtime(fd, received.conversation.id, profile, threshold),
            context.state,
            flow_engine.TurnInput(
                text=fd.speller.correct(received.message.text),
                core=text,
                entities=understanding.entities,
                intent=intent,
                passages=understanding.passages,
                confidence=understanding.confidence,
                negative=understanding.negative,
            ),
        )
    approved = None
    written: model_turn.ModelTurn | None = None
    if first and flow is None and vector is not None:
        approved = fd.approved_answer(vector)
    if approved is not None:
        # A reviewer's answer to this same question comes before the help centre.
        decision = Decision(Action.ANSWER, "approved_answer", _answered(context.state))
        draft = Draft(
            approved.answer,
            (Citation(ArticleId(f"approved-{approved.id}"), "Approved answer"),),
            handoff=False,
            grounded_in=approved.answer,
        )
    elif flow is not None:
        decision, draft = _flow_decision(flow, understanding, guidelines, open_now)
    else:
        decision = decide(
            context, understanding, guidelines, threshold, text, settings.sure_answer_threshold
        )
        draft = respond(decision, understanding, guidelines, open_now=open_now)
        if fd.chat_model is not None and model_turn.wants_model(decision.action, decision.reason):
            decision, written = await model_turn.compose(
                fd,
                fd.chat_model,
                customer=received.message,
                history=context.history,
                decision=decision,
                passages=understanding.passages,
                fallback=draft,
                guidelines=guidelines,
                vector=vector,
            )
            draft = written.draft
    flowing = flow is not None and approved is None
    checked = guard(
        draft, guidelines, recurring=not flowing and (written is None or not written.used_model)
    )
    if written is not None and written.interventions:
        checked = Guarded(checked.draft, (*written.interventions, *checked.interventions))
    meta: dict[str, Any] = {
        "action": decision.action.value,
        "reason": decision.reason,
        "confidence": round(understanding.confidence, 4),
        "sentiment": round(understanding.sentiment, 4),
        "frustration": understanding.mood.frustration,
        "passages": [p.chunk_id for p in understanding.passages[:3]],
    }
    if by_intent:
        meta["by_intent"] = True
    if understanding.entities:
        meta["entities"] = [{"kind": e.kind, "value": e.value} for e in understanding.entities]
    if understanding.mood.signals:
        meta["frustration_signals"] = list(understanding.mood.signals)
    if intent is not None:
        meta["intent"] = intent.label
        meta["intent_confidence"] = round(intent.confidence, 4)
        meta["out_of_scope"] = intent.out_of_scope
    if checked.interventions:
        meta["interventions"] = list(checked.interventions)
    if flow is not None:
        meta["flow"] = flow.flow
        if flow.calls:
            meta["tool_calls"] = flow.calls
    events: list[tuple[str, dict[str, Any]]] = []
    if written is not None:
        meta["model"] = written.meta
        events = written.events
    return decision, checked, meta, events


def _answered(state: dict[str, Any]) -> dict[str, Any]:
    carried = dict(state)
    carried["low_confidence_streak"] = 0
    carried.pop("offered_human", None)
    return carried


# How much closer than the intent's best passage another must be to keep its place.
_CLEARLY_CLOSER = 0.1


def _by_intent(
    fd: Frontdesk,
    text: str,
    vector: Vector,
    lexical: Vector | None,
    passages: list[Passage],
    intent: Prediction | None,
    profile: Profile,
) -> tuple[list[Passage], bool]:
    """``passages`` with the best passage of the articles that answer the predicted intent
    (``intents.articles``) first, and True, when that passage reaches the lower bar of
    agreement and no passage outside them matches clearly more closely (by
    ``_CLEARLY_CLOSER``) at ``sure_answer_threshold`` or above; otherwise ``passages`` as they
    are, and False. A FAQ entry that summarises one of the articles answers one precise
    question ("Can I pay with a gift card?": "Yes, if ..."), so it needs the usual bar; below
    it, the articles' own passages are looked at."""
    articles = intent_articles(intent, profile.guidelines.intents)
    if not articles:
        return passages, False
    settings = fd.settings
    best = fd.retriever.best_within(text, vector, articles, lexical)
    if (
        best is not None
        and best.article_id != best.cite_id  # a FAQ entry that cites the article
        and best.similarity < settings.answer_threshold
    ):
        best = fd.retriever.best_within(text, vector, articles, lexical, summaries=False)
    if best is None or best.similarity < settings.agreed_answer_threshold:
        return passages, False
    top = passages[0] if passages else None
    if (
        top is not None
        and top.similarity >= settings.sure_answer_threshold
        and top.similarity >= best.similarity + _CLEARLY_CLOSER
    ):
        # A passage elsewhere matches the question closely ("Will you ever ask for my card
        # number in chat?" is a FAQ entry on security, 0.81; the intent payment_methods, whose
        # best passage is at 0.46).
        return passages, False
    others = [p for p in passages if p.chunk_id != best.chunk_id]
    return [best, *others][: max(len(passages), 1)], True


def _runtime(
    fd: Frontdesk, conversation_id: str, profile: Profile, threshold: float
) -> flow_engine.Runtime:
    from frontdesk.actions.shop import ShopBackend

    return flow_engine.Runtime(
        flows=profile.flows,
        backend=ShopBackend(fd),
        conversation_id=conversation_id,
        guidelines=profile.guidelines,
        threshold=threshold,
        catalog=fd.catalog,
        products=fd.products,
        high_value=profile.guidelines.escalation.high_value_order,
    )


def _flow_decision(
    flow: flow_engine.FlowReply, understanding: Any, guidelines: Guidelines, open_now: bool
) -> tuple[Decision, Draft]:
    state = dict(flow.state)
    state["low_confidence_streak"] = 0
    state.pop("offered_human", None)
    if flow.offer_human:
        state["offered_human"] = True
    if flow.handoff:
        state.pop("flows", None)
        decision = Decision(Action.HANDOFF, flow.reason, state)
        handoff = respond(decision, understanding, guidelines, open_now=open_now)
        text = "\n\n".join(t for t in (flow.text, handoff.text) if t)
        return decision, Draft(
            text, flow.citations, handoff=True, grounded_in=flow.grounded, cited_text=flow.grounded
        )
    decision = Decision(Action.FLOW, flow.reason, state)
    return decision, Draft(
        flow.text or guidelines.texts.fallback,
        flow.citations,
        handoff=False,
        grounded_in=flow.grounded,
        cited_text=flow.grounded,
    )


async def _publish_message(fd: Frontdesk, message: Message) -> None:
    await fd.bus.publish(message.conversation_id, {"type": "message", "message": message.public()})


def _result(
    received: _Received,
    conversation: Conversation,
    replies: Sequence[Message],
    started: float,
) -> TurnResult:
    return TurnResult(
        message=received.message,
        replies=tuple(replies),
        handoff=conversation.mode is Mode.HUMAN,
        duplicate=received.duplicate,
        server_ms=(time.perf_counter() - started) * 1000,
        conversation=conversation,
    )


async def get_conversation_with_messages(
    fd: Frontdesk, conversation_id: str, after_seq: int = 0
) -> tuple[Conversation, list[Message]]:
    def work(session: Session) -> tuple[Conversation, list[Message]]:
        conversation = repo.get_conversation(session, conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        return conversation, repo.messages_after(session, conversation_id, after_seq)

    return await fd.db.run(work)
