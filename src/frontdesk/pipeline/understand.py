"""Understand stage: what the message asks, how well the knowledge covers it, and the mood."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from frontdesk.company.guidelines import Escalation, Guidelines
from frontdesk.core.types import Passage

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))( there)?\s*[!.,]*\s*$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\s*(thanks|thank you|thx|ty|cheers)( (so|very) much)?( for (your|the) help)?\s*[!.,]*\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Understanding:
    passages: tuple[Passage, ...]
    confidence: float
    wants_human: bool
    affirmative: bool
    negative: bool
    greeting: bool
    thanks: bool
    sentiment: float

    @property
    def best(self) -> Passage | None:
        return self.passages[0] if self.passages else None


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=64)
def _patterns(
    escalation: Escalation,
) -> tuple[list[re.Pattern[str]], re.Pattern[str], re.Pattern[str]]:
    return (
        [re.compile(p, re.IGNORECASE) for p in escalation.human_request_patterns],
        re.compile(escalation.affirmative_pattern, re.IGNORECASE),
        re.compile(escalation.negative_pattern, re.IGNORECASE),
    )


def sentiment(text: str) -> float:
    """VADER compound score in [-1, 1]."""
    return float(_analyzer().polarity_scores(text)["compound"])


def needs_knowledge(text: str, guidelines: Guidelines) -> bool:
    """False for messages whose reply never depends on the knowledge base (a request for a
    person, a bare greeting or thanks): their turn skips the sentence encoder."""
    human, _, _ = _patterns(guidelines.escalation)
    return not (_GREETING.match(text) or _THANKS.match(text) or any(p.search(text) for p in human))


def understand(text: str, passages: Sequence[Passage], guidelines: Guidelines) -> Understanding:
    """Read the (pseudonymized) text together with the passages retrieved for it."""
    human, yes, no = _patterns(guidelines.escalation)
    confidence = passages[0].similarity if passages else 0.0
    return Understanding(
        passages=tuple(passages),
        confidence=max(0.0, min(1.0, confidence)),
        wants_human=any(p.search(text) for p in human),
        affirmative=bool(yes.search(text)),
        negative=bool(no.search(text)),
        greeting=bool(_GREETING.match(text)),
        thanks=bool(_THANKS.match(text)),
        sentiment=sentiment(text),
    )
