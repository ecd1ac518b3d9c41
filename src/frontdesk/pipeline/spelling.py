"""Spelling: typos corrected against the company's own vocabulary before understanding.

The vocabulary is every word of the help centre, the catalog, the flows' texts and a short
list of words customers use with a service desk, each with how often it occurs. A word of five
or more lower-case letters that is not in it, and is one edit (a letter added, dropped,
changed, or two neighbours swapped) from a vocabulary word, becomes the most frequent such
word. Lookups use symmetric deletes: a word and its candidates share a one-letter deletion.

Only the understanding sees the corrected text (retrieval, intents, entities, flows); the
stored message is what the customer typed. Identifiers are never touched: tokens, emails,
order ids, words with digits or capitals (names).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"(?<![\w@<#])[a-z]{5,}(?![\w@>])")
COMMON = (
    "first", "second", "third", "fourth", "fifth", "last", "latest", "previous", "other",
    "original", "refund", "refunds", "return", "returns", "exchange", "cancel", "cancelled",
    "order", "orders", "delivery", "delivered", "shipping", "address", "payment", "method",
    "gift", "card", "paypal", "credit", "please", "thanks", "thank", "person", "human", "agent",
    "change", "update", "where", "status", "tracking", "package", "arrived", "broken", "damaged",
    "missing", "wrong", "mistake", "needed", "longer", "account", "email", "store", "price",
    "cheaper", "bigger", "smaller", "size", "color", "colour", "recommend", "looking",
    "waterproof", "problem", "question", "money", "back",
)  # fmt: skip


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Speller:
    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
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
        return cls(counts)

    def word(self, word: str) -> str:
        if word in self.counts:
            return word
        candidates: set[str] = set(self.index.get(word, ()))
        for key in _deletions(word):
            candidates.update(self.index.get(key, ()))
        candidates = {c for c in candidates if abs(len(c) - len(word)) <= 1 and c != word}
        if not candidates:
            return word
        return max(candidates, key=lambda c: (self.counts[c], c))

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self.word(m.group()), text)
