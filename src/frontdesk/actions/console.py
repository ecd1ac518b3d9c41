"""Human oversight actions: what happens at a handoff, and what agents do in the console
(take over, reply, note, hand back, resolve). Every agent action is audited and announced on
the console's channel of the bus, after its commit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError, pseudonyms, vault
from frontdesk.adapters.store import people
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import ConversationRow
from frontdesk.core.types import Conversation, ConversationId, Message, Mode, Role, Status
from frontdesk.service import Frontdesk

CONSOLE = ConversationId("console")  # the bus channel every console socket follows


class ConsoleError(ActionError):
    """An agent action that cannot be done; ``code`` and ``status`` go to the API."""


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    reason: str
    summary: dict[str, Any]
    online_agents: tuple[str, ...]
    minutes_per_conversation: float
    open_now: bool
    extra: dict[str, Any] = field(default_factory=dict)


def _mood(sentiment: float, frustration: float) -> str:
    if frustration >= 0.5:
        return "frustrated"
    if sentiment <= -0.3:
        return "negative"
    if sentiment >= 0.3:
        return "positive"
    return "neutral"


def summarize(
    conversation: Conversation,
    history: Sequence[Message],
    customer_text: str,
    state: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """What the agent needs at a glance: what the customer wants, what the bot did, who the
    customer is (a keyed id; the console shows the name), and their mood. No raw PII: the
    texts are the pseudonymized ones."""
    intent = meta.get("intent")
    wants = f"“{customer_text[:200]}”"
    if intent and not meta.get("out_of_scope"):
        wants = f"{str(intent).replace('_', ' ')}: {wants}"
    did: list[str] = list(state.get("summary", []))
    answered = sum(1 for m in history if m.role is Role.BOT and m.citations)
    if answered:
        did.append(f"Answered {answered} question(s) from the help centre.")
    flows = [f.get("name") for f in conversation.state.get("flows", [])]
    if flows:
        did.append(f"Was in the middle of: {', '.join(str(f) for f in flows)}.")
    verified = (state.get("auth") or {}).get("customer_id")
    if verified:
        did.append("Verified the customer.")
    return {
        "wants": wants,
        "bot_did": did or ["Nothing yet: the customer asked early."],
        "customer_id": verified,
        "sentiment": _mood(float(meta.get("sentiment", 0.0)), float(meta.get("frustration", 0))),
    }


def wait_text(ahead: int, online: int, minutes_per_conversation: float) -> str:
    if online == 0:
        return "as soon as someone from the team is free"
    minutes = max(2, math.ceil((ahead + 1) / online * minutes_per_conversation))
    return f"in about {minutes} minutes"


def apply_handoff(
    session: repo.Handle, conversation_id: str, plan: HandoffPlan, text: str
) -> tuple[dict[str, Any], str]:
    """Inside transaction 2 of a turn: choose the agent (online, least loaded), estimate the
    wait, record the handoff. Returns the conversation changes and the final reply text."""
    agent = None
    if plan.online_agents:
        load = people.load_by_agent(session, plan.online_agents)
        agent = min(plan.online_agents, key=lambda a: (load.get(a, 0), a))
    ahead = session.execute(
        select(func.count())
        .select_from(ConversationRow)
        .where(
            ConversationRow.status == Status.WAITING.value,
            ConversationRow.id != conversation_id,
        )
    ).scalar_one()
    people.open_handoff(session, conversation_id, plan.reason, plan.summary)
    changes: dict[str, Any] = {"assigned_to": agent}
    final = text.replace(
        "{wait}", wait_text(ahead, len(plan.online_agents), plan.minutes_per_conversation)
    )
    return changes, final


# --- agent actions ----------------------------------------------------------------------------


def _found(fd: Frontdesk, text: str, user: people.User) -> pseudonyms.Found:
    """The personal data in an agent's text, found before the transaction (the detector runs
    on the event loop's thread only), like a customer's. Nothing an agent types is stored in
    clear but their own name ("Hi, this is Ann")."""
    return pseudonyms.find(fd, text, own_name=user.name)


async def announce(fd: Frontdesk, conversation_id: str) -> None:
    await fd.bus.publish(CONSOLE, {"type": "changed", "conversation_id": conversation_id})


def _conversation(session: Session, conversation_id: str) -> Conversation:
    found = repo.get_conversation(session, conversation_id)
    if found is None:
        raise ConsoleError("not_found", f"no conversation with id {conversation_id!r}", 404)
    return found


def _must_hold(conversation: Conversation, user: people.User) -> None:
    if conversation.assigned_to != user.id:
        raise ConsoleError(
            "not_assigned",
            "This conversation is not assigned to you: take it over first.",
        )


async def do_take(
    fd: Frontdesk, conversation_id: str, user: people.User, *, force: bool
) -> Conversation:
    def work(session: Session) -> Conversation:
        conversation = _conversation(session, conversation_id)
        holder = people.claim(session, conversation_id, user.id, force=force)
        if holder is not None:
            name = people.names(session, [holder]).get(holder, "another agent")
            raise ConsoleError("taken", f"{name} has already taken this conversation.")
        repo.update_conversation(
            session, conversation_id, mode=Mode.HUMAN.value, status=Status.OPEN.value
        )
        people.audit(
            session,
            user.id,
            "take_over",
            conversation_id,
            {"from": conversation.assigned_to, "forced": force},
        )
        repo.append_event(session, "agent_took_over", {"agent": user.id}, conversation_id)
        return _conversation(session, conversation_id)

    taken = await fd.db.run(work)
    await announce(fd, conversation_id)
    await fd.bus.publish(
        taken.id, {"type": "conversation", "mode": taken.mode.value, "status": taken.status.value}
    )
    return taken


async def do_agent_reply(
    fd: Frontdesk, conversation_id: str, user: people.User, text: str
) -> Message:
    found = _found(fd, text, user)

    def work(session: Session) -> Message:
        _must_hold(_conversation(session, conversation_id), user)
        # An agent's first reply ends the wait (an agent assigned at handoff may reply
        # without pressing "take over").
        claimed = repo.claim_seq(session, conversation_id, status=Status.OPEN.value)
        assert claimed is not None
        _, seq = claimed
        clean = pseudonyms.apply(session, conversation_id, text, found).text
        message = repo.insert_message(
            session, conversation_id, seq, Role.AGENT, clean, meta={"agent": user.id}
        )
        people.audit(session, user.id, "reply", conversation_id, {"seq": seq})
        repo.append_event(session, "agent_replied", {"agent": user.id, "seq": seq}, conversation_id)
        return message

    message = await fd.db.run(work)
    await fd.bus.publish(message.conversation_id, {"type": "message", "message": message.public()})
    await announce(fd, conversation_id)
    return message


async def do_add_note(
    fd: Frontdesk, conversation_id: str, user: people.User, text: str
) -> dict[str, Any]:
    found = _found(fd, text, user)

    def work(session: Session) -> dict[str, Any]:
        _conversation(session, conversation_id)
        clean = pseudonyms.apply(session, conversation_id, text, found).text
        note = people.add_note(session, conversation_id, user.id, clean)
        people.audit(session, user.id, "note", conversation_id, {"note": note.id})
        return {
            "id": note.id,
            "author": user.name,
            "text": note.text,
            "created_at": note.created_at.isoformat(),
        }

    note = await fd.db.run(work)
    await announce(fd, conversation_id)
    return note


async def _finish(
    fd: Frontdesk,
    conversation_id: str,
    user: people.User,
    *,
    action: str,
    mode: Mode,
    status: Status,
    say: str | None,
) -> Conversation:
    def work(session: Session) -> tuple[Conversation, Message | None]:
        conversation = _conversation(session, conversation_id)
        if not (action == "resolved" and user.role == "admin"):
            _must_hold(conversation, user)
        state = dict(conversation.state)
        for key in ("offered_human", "flows", "unanswered", "low_confidence_streak"):
            state.pop(key, None)
        claimed = repo.claim_seq(
            session,
            conversation_id,
            mode=mode.value,
            status=status.value,
            assigned_to=None,
            state=state,
        )
        assert claimed is not None
        changed, seq = claimed
        message = (
            repo.insert_message(session, conversation_id, seq, Role.SYSTEM, say) if say else None
        )
        people.close_handoff(session, conversation_id)
        people.audit(session, user.id, action, conversation_id)
        repo.append_event(
            session, f"conversation_{action}", {"agent": user.id, "by": "agent"}, conversation_id
        )
        return changed, message

    changed, message = await fd.db.run(work)
    if message is not None:
        await fd.bus.publish(changed.id, {"type": "message", "message": message.public()})
    await fd.bus.publish(
        changed.id,
        {"type": "conversation", "mode": changed.mode.value, "status": changed.status.value},
    )
    await announce(fd, conversation_id)
    return changed


async def do_hand_back(fd: Frontdesk, conversation_id: str, user: people.User) -> Conversation:
    name = fd.guidelines.assistant_name
    return await _finish(
        fd,
        conversation_id,
        user,
        action="handed_back",
        mode=Mode.BOT,
        status=Status.OPEN,
        say=f"You're back with {name}, our virtual assistant. How else can I help?",
    )


async def do_resolve(fd: Frontdesk, conversation_id: str, user: people.User) -> Conversation:
    return await _finish(
        fd,
        conversation_id,
        user,
        action="resolved",
        mode=Mode.BOT,  # if the customer writes again, the bot answers and it reopens
        status=Status.RESOLVED,
        say=None,
    )


async def do_reveal(fd: Frontdesk, conversation_id: str, user: people.User) -> dict[str, str]:
    """The raw values behind the conversation's tokens, for the agent who has taken it over
    (or an admin). Every reveal is audited: who, when, which kinds, how many."""

    def work(session: Session) -> dict[str, str]:
        conversation = _conversation(session, conversation_id)
        if user.role != "admin" and conversation.assigned_to != user.id:
            raise ConsoleError(
                "reveal_forbidden",
                "take over the conversation first to see the personal data in it",
                403,
            )
        values = vault.reveal_values(session, fd, conversation_id)
        kinds = sorted({token.strip("<>").rsplit("_", 1)[0] for token in values})
        people.audit(
            session,
            user.id,
            "reveal_values",
            conversation_id,
            {"kinds": kinds, "count": len(values)},
        )
        return values

    return await fd.db.run(work)
