"""Decide stage: answer, ask to rephrase, offer a person, or hand over."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from frontdesk.company.guidelines import Guidelines
from frontdesk.pipeline.context import Context
from frontdesk.pipeline.understand import Understanding


class Action(StrEnum):
    ANSWER = "answer"
    REPHRASE = "rephrase"
    OFFER_HUMAN = "offer_human"
    HANDOFF = "handoff"
    DECLINED_HUMAN = "declined_human"
    GREET = "greet"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    IDENTITY = "identity"
    CAPABILITIES = "capabilities"
    FLOW = "flow"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    state: dict[str, Any]


def overrides(context: Context, understanding: Understanding, guidelines: Guidelines) -> bool:
    """True when the turn goes to ``decide`` before any flow: the customer asks for a person,
    answers an offer of one, or is frustrated. Flows handle everything else first."""
    offered = bool(context.state.get("offered_human"))
    return (
        understanding.wants_human
        or understanding.sensitive is not None
        or (offered and (understanding.affirmative or understanding.negative))
        or understanding.mood.frustration >= guidelines.escalation.frustration_threshold
    )


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _same_question(a: str, b: str) -> bool:
    """The same question asked again, allowing a word or two of difference."""
    if a == b:
        return True
    left, right = set(a.split()), set(b.split())
    return bool(left and right) and len(left & right) / len(left | right) >= 0.7


def decide(
    context: Context,
    understanding: Understanding,
    guidelines: Guidelines,
    threshold: float,
    text: str = "",
    sure: float | None = None,
) -> Decision:
    """The next move and the conversation state to carry forward.

    In order: a request for a person (but "when is customer support open?" is answered when
    the knowledge answers it with confidence), an answer to the offer of one, frustration,
    small talk ("are you a bot?" is answered truthfully, with the offer of a person; "what can
    you do?" with what the assistant does), out of scope (ask again, then offer a person; but
    a question to the store itself that the knowledge answers with confidence is answered, and
    so is one that a passage matches at ``sure`` or above, naming no other company: "What does
    pending mean?"), a confident answer from the knowledge, and otherwise ask to rephrase
    (then offer a person)."""
    state = dict(context.state)
    offered = bool(state.pop("offered_human", False))
    streak = int(state.get("low_confidence_streak", 0))
    escalation = guidelines.escalation

    def done(action: Action, reason: str, *, low: bool = False, offer: bool = False) -> Decision:
        state["low_confidence_streak"] = streak + 1 if low else 0
        if offer:
            state["offered_human"] = True
        if action is Action.HANDOFF:
            state.pop("flows", None)  # a person takes it from here
        return Decision(action, reason, state)

    def unclear(reason: str) -> Decision:
        asked = _normal(text)
        if asked:
            unanswered: list[str] = list(state.get("unanswered", []))
            repeats = sum(1 for earlier in unanswered if _same_question(earlier, asked)) + 1
            state["unanswered"] = [*unanswered, asked][-5:]
            if repeats >= escalation.loop_repeats:
                return done(Action.HANDOFF, "loop")
        if streak + 1 >= escalation.low_confidence_turns:
            if escalation.low_confidence_handoff:
                return done(Action.HANDOFF, f"{reason}_repeated", low=True)
            return done(Action.OFFER_HUMAN, f"{reason}_repeated", low=True, offer=True)
        return done(Action.REPHRASE, reason, low=True)

    confident = understanding.best is not None and understanding.confidence >= threshold
    if understanding.wants_human and not (understanding.when_open and confident):
        return done(Action.HANDOFF, "customer_request")
    if understanding.sensitive is not None:
        return done(Action.HANDOFF, f"sensitive:{understanding.sensitive}")
    if offered and understanding.affirmative:
        return done(Action.HANDOFF, "accepted_offer")
    if offered and understanding.negative:
        return done(Action.DECLINED_HUMAN, "declined_offer")
    if understanding.mood.frustration >= escalation.frustration_threshold:
        return done(Action.HANDOFF, "frustration")
    if understanding.greeting:
        return done(Action.GREET, "greeting")
    if understanding.thanks:
        return done(Action.THANKS, "thanks")
    if understanding.goodbye:
        return done(Action.GOODBYE, "goodbye")
    if understanding.identity:
        return done(Action.IDENTITY, "identity", offer=True)
    if understanding.capabilities:
        return done(Action.CAPABILITIES, "capabilities")
    sure_answer = (
        confident
        and sure is not None
        and understanding.confidence >= sure
        and understanding.own_names_only
    )
    if (
        understanding.out_of_scope
        and not (confident and understanding.to_store)
        and not sure_answer
    ):
        return unclear("out_of_scope")
    if confident:
        return done(Action.ANSWER, "confident")
    return unclear("low_confidence")
