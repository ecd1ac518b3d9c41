"""Sentiment and frustration of one customer message.

Sentiment is VADER's compound score in [-1, 1]. Frustration, in [0, 1], adds the signals that
a lexicon misses in support chats: asking the same thing again, shouting in capitals,
profanity, phrases like "this is useless" or "I already told you", and piles of "!!!" or "???".
The decide stage hands a frustrated customer to a person (threshold in the guidelines).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_PROFANITY = re.compile(
    r"\b(damn|dammit|hell|crap|crappy|shit\w*|bullshit|fuck\w*|wtf|ffs|piss\w*|bloody|"
    r"sucks?|screw (this|you))\b",
    re.IGNORECASE,
)
_EXASPERATION = re.compile(
    r"\b(useless|pointless|ridiculous|unacceptable|waste of (my )?time|not helpful|"
    r"no help|i already (told|said|asked|gave)|(are|r) (you|u) (even )?(listening|reading)|"
    r"stupid (bot|machine)|worst|fed up|sick of|for the (last|third|hundredth) time|"
    r"again\?!|still (not|nothing|no)|how many times|"
    r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) time (i'?m|i am|i'?ve|i have) "
    r"(asking|asked|writing|written|contacting|contacted|telling|told|explaining))\b",
    re.IGNORECASE,
)
_PUNCTUATION = re.compile(r"[!?]{3,}")
_WORDS = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True, slots=True)
class Mood:
    sentiment: float
    frustration: float
    signals: tuple[str, ...]


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER compound score in [-1, 1]."""
    return float(_analyzer().polarity_scores(text)["compound"])


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def repeats(text: str, earlier: Sequence[str]) -> bool:
    """The message asks again what one of the customer's earlier messages asked."""
    words = _words(text)
    if len(words) < 3:
        return False
    for previous in earlier:
        other = _words(previous)
        if other and len(words & other) / len(words | other) >= 0.7:
            return True
    return False


def mood(text: str, earlier_customer_messages: Sequence[str] = ()) -> Mood:
    compound = sentiment(text)
    signals: list[str] = []
    score = max(0.0, -compound) * 0.5
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= 0.7:
        signals.append("shouting")
        score += 0.25
    if _PROFANITY.search(text):
        signals.append("profanity")
        score += 0.3
    if _EXASPERATION.search(text):
        signals.append("exasperation")
        score += 0.35
    if _PUNCTUATION.search(text):
        signals.append("punctuation")
        score += 0.1
    if repeats(text, earlier_customer_messages):
        signals.append("repeated")
        score += 0.3
    return Mood(compound, round(min(1.0, score), 4), tuple(signals))
