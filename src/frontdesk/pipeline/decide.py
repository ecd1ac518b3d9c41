"""Decide stage: answer, ask to rephrase, offer a person, or hand over."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    state: dict[str, Any]


def decide(
    context: Context, understanding: Understanding, guidelines: Guidelines, threshold: float
) -> Decision:
    """The next move and the conversation state to carry forward."""
    state = dict(context.state)
    offered = bool(state.pop("offered_human", False))
    streak = int(state.get("low_confidence_streak", 0))

    def done(action: Action, reason: str, *, low: bool = False, offer: bool = False) -> Decision:
        state["low_confidence_streak"] = streak + 1 if low else 0
        if offer:
            state["offered_human"] = True
        return Decision(action, reason, state)

    if understanding.wants_human:
        return done(Action.HANDOFF, "customer_request")
    if offered and understanding.affirmative:
        return done(Action.HANDOFF, "accepted_offer")
    if offered and understanding.negative:
        return done(Action.DECLINED_HUMAN, "declined_offer")
    if understanding.greeting:
        return done(Action.GREET, "greeting")
    if understanding.thanks:
        return done(Action.THANKS, "thanks")
    if understanding.best is not None and understanding.confidence >= threshold:
        return done(Action.ANSWER, "confident")
    if streak + 1 >= guidelines.escalation.low_confidence_turns:
        return done(Action.OFFER_HUMAN, "low_confidence_repeated", low=True, offer=True)
    return done(Action.REPHRASE, "low_confidence", low=True)
