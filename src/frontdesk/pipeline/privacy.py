"""Privacy stage: find personal data in a message and replace it by stable pseudonyms.

Pattern-based detection of emails, payment card numbers (Luhn-checked) and phone numbers.
Each value becomes a token such as ``<EMAIL_1>``; the same value gets the same token for the
whole conversation. The stage only computes keyed digests (HMAC-SHA256) of the values; the
action layer maps digests to numbers in the ``pseudonyms`` table, which never holds a value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EMAIL = "EMAIL"
CARD = "CARD"
PHONE = "PHONE"

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13 to 19 digits, optionally grouped by single spaces or dashes.
_CARD_RE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# A phone number must show that it is one: a leading +, an area code in parentheses, or
# separators between digit groups. Bare digit runs (order and item ids in a store) are not
# taken for phone numbers.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|\d{3} \d{3} \d{4}"
    r")(?!\w)"
)
TOKEN_RE = re.compile(r"<(EMAIL|CARD|PHONE)_(\d+)>")


@dataclass(frozen=True, slots=True)
class Span:
    kind: str
    start: int
    end: int
    value: str


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= a or start >= b for a, b in taken)


def detect(text: str) -> list[Span]:
    """Personal data in ``text``, left to right, without overlaps."""
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []
    for match in _EMAIL_RE.finditer(text):
        spans.append(Span(EMAIL, match.start(), match.end(), match.group()))
        taken.append(match.span())
    for match in _CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and _free(taken, *match.span()):
            spans.append(Span(CARD, match.start(), match.end(), match.group()))
            taken.append(match.span())
    for match in _PHONE_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 7 <= len(digits) <= 15 and _free(taken, *match.span()):
            spans.append(Span(PHONE, match.start(), match.end(), match.group()))
            taken.append(match.span())
    spans.sort(key=lambda span: span.start)
    return spans


def normalise(kind: str, value: str) -> str:
    if kind == EMAIL:
        return value.strip().lower()
    return re.sub(r"\D", "", value)


def digest(key: bytes, kind: str, value: str) -> str:
    """A keyed digest of the value: equal values match, the value cannot be read back."""
    message = f"{kind}:{normalise(kind, value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Pseudonymized:
    text: str
    kinds: tuple[str, ...]


def replace(text: str, spans: Sequence[Span], tokens: Mapping[Span, str]) -> Pseudonymized:
    """``text`` with every span replaced by its token."""
    parts: list[str] = []
    cursor = 0
    for span in spans:
        parts.append(text[cursor : span.start])
        parts.append(tokens[span])
        cursor = span.end
    parts.append(text[cursor:])
    return Pseudonymized("".join(parts), tuple(span.kind for span in spans))


def token(kind: str, number: int) -> str:
    return f"<{kind}_{number}>"
