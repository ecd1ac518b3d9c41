"""Spelling: typos corrected against the company's own vocabulary before understanding.

The vocabulary is every word of the help centre, the catalog, the flows' texts and a short
list of words customers use with a service desk, each with how often it occurs. A word of five
or more lower-case letters that is neither in it nor an English word (the word list of
pyspellchecker, MIT), and is one edit (a letter added, dropped, changed, or two neighbours
swapped) from a vocabulary word, becomes the most frequent such word. A real word is never
"corrected": "lawyer" stays "lawyer" even though "layer" is in the help centre. Lookups use
symmetric deletes: a word and its candidates share a one-letter deletion.

Only the understanding sees the corrected text (retrieval, intents, entities, flows); the
stored message is what the customer typed. Identifiers are never touched: tokens, emails,
order ids, words with digits or capitals (names).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

_WORD = re.compile(r"(?<![\w@<#])[a-z]{5,}(?![\w@>])")
COMMON = (
    "first", "second", "third", "fourth", "fifth", "last", "latest", "previous", "other",
    "original", "refund", "refunds", "return", "returns", "exchange", "cancel", "cancelled",
    "order", "orders", "delivery", "delivered", "shipping", "address", "payment", "method",
    "gift", "card", "paypal", "credit", "please", "thanks", "thank", "person", "human", "agent",
    "change", "update", "where", "status", "tracking", "package", "arrived", "broken", "damaged",
    "missing", "wrong", "mistake", "needed", "longer", "account", "email", "store", "price",
    "cheaper", "bigger", "smaller", "size", "sizes", "color", "colour", "colors", "colours",
    "recommend", "looking", "waterproof", "problem", "question", "money", "back",
)  # fmt: skip


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=1)
def english() -> frozenset[str]:
    """The English words pyspellchecker knows (about 160,000), loaded once per process."""
    from spellchecker import SpellChecker

    return frozenset(SpellChecker().word_frequency.dictionary)


class Speller:
    def __init__(self, counts: Counter[str], known: frozenset[str] = frozenset()) -> None:
        self.counts = counts
        self.known = known
        self.index: dict[str, list[str]] = {}
        for word in counts:
            if len(word) >= 4:
                for key in _deletions(word) | {word}:
                    self.index.setdefault(key, []).append(word)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Speller:
        counts: Counter[str] = Counter(COMMON)
        for text in texts:
            counts.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", text))
        return cls(counts, english())

    def word(self, word: str) -> str:
        if word in self.counts or word in self.known:
            return word
        candidates: set[str] = set(self.index.get(word, ()))
        for key in _deletions(word):
            candidates.update(self.index.get(key, ()))
        candidates = {c for c in candidates if abs(len(c) - len(word)) <= 1 and c != word}
        if not candidates:
            return word
        letters = sorted(word)
        # Two swapped letters first ("laywer" is "lawyer", not "layer"), then one changed
        # letter, then the most frequent word.
        return max(
            candidates,
            key=lambda c: (sorted(c) == letters, len(c) == len(word), self.counts[c], c),
        )

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self.word(m.group()), text)


_PREAMBLE = re.compile(
    r"^\s*(?:"
    r"(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there)?[\s,!.?]*"
    r"|(?:(?:i'?m|i am|my name is|this is|it'?s) [A-Za-zÀ-ÿ'-]+(?: [A-Za-zÀ-ÿ'-]+)?[.!]\s*)"
    r"|(?:(?:could|can|would) you (?:please )?help(?: me)?(?: please)?\??[.!]?\s*)"
    r")+",
    re.IGNORECASE,
)


def strip_preamble(text: str) -> str:
    """The message without a greeting, a self-introduction or a plea for help in front of
    the actual request ("Hi, I'm Emily. Where is my order?" -> "Where is my order?"). A message
    that is nothing but those stays as it is (a greeting is understood as a greeting)."""
    rest = _PREAMBLE.sub("", text, count=1)
    return rest if rest.strip() else text
