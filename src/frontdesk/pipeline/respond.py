"""Respond stage: compose the reply. The built-in responder is extractive: it answers with a
passage from the knowledge base, word for word, and cites the article."""

from __future__ import annotations

import re
from dataclasses import dataclass

from frontdesk.company.guidelines import Guidelines
from frontdesk.core.types import Citation
from frontdesk.pipeline.decide import Action, Decision
from frontdesk.pipeline.understand import Understanding

_EMPHASIS = re.compile(r"(\*\*|__|`)")


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    citations: tuple[Citation, ...]
    handoff: bool
    grounded_in: str | None = None  # the passage text an extractive answer must come from
    cited_text: str | None = None  # the part of ``text`` the citation covers (None: all of it)


def clean_passage(text: str) -> str:
    """Markdown emphasis removed; bullets and line breaks kept for the widget."""
    return _EMPHASIS.sub("", text).strip()


def respond(
    decision: Decision, understanding: Understanding, guidelines: Guidelines, *, open_now: bool
) -> Draft:
    texts = guidelines.texts
    match decision.action:
        case Action.ANSWER:
            best = understanding.best
            assert best is not None  # decide() answers only with a passage
            return Draft(
                text=clean_passage(best.text),
                citations=(Citation(best.cite_id, best.cite_title),),
                handoff=False,
                grounded_in=clean_passage(best.text),
            )
        case Action.HANDOFF:
            text = texts.handoff if open_now else texts.handoff_closed
            if decision.reason == "frustration" and open_now:
                text = texts.frustrated
            return Draft(text, (), handoff=True)
        case Action.OFFER_HUMAN:
            return Draft(texts.offer_human, (), handoff=False)
        case Action.DECLINED_HUMAN:
            return Draft(texts.declined_human, (), handoff=False)
        case Action.GREET:
            return Draft(texts.greeting, (), handoff=False)
        case Action.THANKS:
            return Draft(texts.thanks, (), handoff=False)
        case Action.GOODBYE:
            return Draft(texts.goodbye, (), handoff=False)
        case Action.IDENTITY:
            return Draft(texts.identity, (), handoff=False)
        case Action.CAPABILITIES:
            return Draft(texts.capabilities, (), handoff=False)
        case Action.REPHRASE | Action.FLOW:  # a flow's reply is composed by the flow engine
            return Draft(texts.fallback, (), handoff=False)
