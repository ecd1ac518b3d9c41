"""The guard for a generative model's reply, checked sentence by sentence as it streams.

A sentence reaches the customer only when it passes every check:

* **grounding**: a factual sentence must be supported by a source of this turn (a retrieved
  passage, an approved answer, a tool result): every number in it appears in that source, and
  most of its content words do. Each number must also be *anchored*: when words stand before
  it in the sentence ("standard delivery takes 10-20 days"), one of them must stand near the
  same number in one sentence of the source, so that a number moved to another subject of the
  same passage ("international 10-20 business days") is refused; and the first of them must
  not be a word that stands only before another number of that source sentence ("express
  shipping is $29.99" against "Express is $14.99 and international shipping is $29.99").
  Words after a number in its clause count too: the first of them that tells the source's
  numbers apart must be the number's own ("it is $29.99 for express shipping" is refused).
  Questions, greetings and offers of a person are not claims.
* **policy**: a promise of a kind the guidelines list (refund, discount, delivery date) must
  appear in a source as well, not only be plausible.
* **tone**: none of the guidelines' forbidden phrases.
* **personal data**: no identifying number (email, phone, card, ...) that no source holds, no
  token (``<EMAIL_2>``) or order id that the conversation has not shown.
* **prompt leak**: not the canary of this call's instructions, nor a run of their words.
* **length**: at most ``max_sentences`` sentences and ``MAX_REPLY_CHARS`` characters; the
  rest is cut (recorded, not refused).

A failed check (other than length) stops the reply: the turn sends its fallback instead, the
extractive answer or the templated text; except that a sentence failing only grounding after a
supported statement ends the reply there (``actions.model_turn``), as everything before it
passed every check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from frontdesk.company.guidelines import Guidelines
from frontdesk.core.types import ArticleId, Citation
from frontdesk.pipeline import privacy
from frontdesk.pipeline.guard import MAX_REPLY_CHARS, REPLY_CHECK

# How much of a sentence's content must be found in one source.
SUPPORT = 0.6
# Anchoring a number: the content words among the ANCHOR_WORDS words before it in the reply's
# sentence, looked for among the ANCHOR_WORDS words before it in a line or sentence of the
# source. Only words before count ("Express is $14.99 and international shipping is $29.99"
# must not anchor "International shipping is $14.99"), and few of them ("express 2–3 business
# days, and international 10–20" must not anchor "Express delivery takes 10–20 business days").
ANCHOR_WORDS = 4
# A run of this many words of the instructions in a reply is a leak.
LEAK_WORDS = 8

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"[a-z][a-z'-]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[a-z][a-z'-]*|[,;](?!\d)")
# A clause ends at a comma or semicolon (not one inside "1,000") and before these words.
_CLAUSE_MARKS = frozenset({",", ";"})
_CLAUSE_WORDS = frozenset({"and", "or", "but", "while", "whereas"})
_SOURCE_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_ORDER_ID = re.compile(r"#W\d{7}")
_CITE_MARK = re.compile(r"\s*\[[^\]\n]{1,60}\]")
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fourteen": "14",
    "fifteen": "15", "twenty": "20", "thirty": "30", "sixty": "60", "ninety": "90",
    "hundred": "100",
}  # fmt: skip
# Words that carry no claim: function words and the small talk of a service chat.
_STOP = frozenset(
    """a an the and or but if then so than that this these those there here it its it's is are
    was were be been being am do does did done have has had having will would can could should
    may might must shall i i'm i'll i've i'd me my mine we we're we'll we've our ours you you're
    you'll you've your yours he she they them their his her to of in on at by for with from as
    about into over under up down out off just also very really only not no yes please thanks
    thank sure happy glad help helping assist let know any anything else all some more most
    what which who whom whose when where why how get got make need needs want like again one
    hi hello hey there today okay ok great good well right sorry unfortunately note however
    customer customers question questions information info team support assistant""".split()  # noqa: SIM905
)
_NOT_CLAIM = re.compile(
    r"\b(connect(ing)? you|a (person|human|colleague|member of (our|the) team)|"
    r"(let|tell) me know|anything else|how can i help|is there anything|"
    r"i('m| am) not sure|i don't know|i do not know|i can't (find|see)|rephrase)\b",
    re.IGNORECASE,
)


def split_sentences(text: str) -> tuple[list[str], str]:
    """The complete sentences of ``text`` and the unfinished rest."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.end()]
        if piece.strip():
            parts.append(piece)
        start = match.end()
    return parts, text[start:]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _without_refs(text: str) -> str:
    """Tokens and order ids are checked by the personal-data check, not read as claims."""
    return _ORDER_ID.sub(" ", privacy.TOKEN_RE.sub(" ", text))


def _numbers(text: str) -> set[str]:
    text = _without_refs(text)
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    found |= {_NUMBER_WORDS[w] for w in _WORD.findall(text.lower()) if w in _NUMBER_WORDS}
    return found


def _content(text: str) -> set[str]:
    words = _WORD.findall(_without_refs(text).lower())
    return {_stem(w) for w in words if w not in _STOP and len(w) > 2}


def _tokens(text: str) -> tuple[list[str], frozenset[int]]:
    """Words (stemmed, stop words kept as ``""``) and numbers, in order; and the indexes of
    the tokens that begin a new clause (after a comma or semicolon, or at "and", "or", ...)."""
    out: list[str] = []
    breaks: set[int] = set()
    for token in _TOKEN.findall(_without_refs(text).lower()):
        if token in _CLAUSE_MARKS:
            breaks.add(len(out))
            continue
        if token in _CLAUSE_WORDS:
            breaks.add(len(out))
        if token[0].isdigit():
            out.append(token.replace(",", ""))
        else:
            out.append(_stem(token) if token not in _STOP and len(token) > 2 else "")
    return out, frozenset(breaks)


def _words_before(tokens: list[str], i: int) -> list[str]:
    """The content words among the ANCHOR_WORDS tokens before ``tokens[i]``, in order."""
    return [t for t in tokens[max(0, i - ANCHOR_WORDS) : i] if t and not t[0].isdigit()]


def _words_after(tokens: list[str], breaks: frozenset[int], i: int) -> list[str]:
    """The content words among the ANCHOR_WORDS tokens after the number ``tokens[i]`` (after
    the second half of its range: "5–7"), up to the end of its clause or the next number."""
    j = i + 1
    if j < len(tokens) and tokens[j][:1].isdigit() and j not in breaks:
        j += 1
    words = []
    for k in range(j, min(len(tokens), j + ANCHOR_WORDS)):
        if k in breaks or tokens[k][:1].isdigit():
            break
        if tokens[k]:
            words.append(tokens[k])
    return words


@dataclass(frozen=True, slots=True)
class Anchor:
    """One occurrence of a number in a sentence (or a table row) of a source."""

    near: frozenset[str]  # the content words before it
    rivals: frozenset[str]  # those before the sentence's other numbers, not before this one
    own: frozenset[str]  # words around it (before, or after in its clause), around no other
    foreign: frozenset[str]  # words around the other numbers, not around this one


def _anchors(text: str) -> dict[str, list[Anchor]]:
    """For each number of ``text``, each of its occurrences within one sentence or line (a
    table row): the content words around it and around the sentence's other numbers. The
    second half of a range ("10–20") is not another number of its first half."""
    found: dict[str, list[Anchor]] = {}
    for sentence in _SOURCE_SENTENCE.split(text):
        tokens, breaks = _tokens(sentence)
        numbers: list[tuple[int, str, frozenset[str], frozenset[str]]] = []
        for i, token in enumerate(tokens):
            if token[:1].isdigit():
                near = frozenset(_words_before(tokens, i))
                numbers.append((i, token, near, near | frozenset(_words_after(tokens, breaks, i))))
        for i, token, near, around in numbers:
            before_others: set[str] = set()
            around_others: set[str] = set()
            for j, _, other_near, other_around in numbers:
                if abs(j - i) > 1:
                    before_others |= other_near
                    around_others |= other_around
            found.setdefault(token, []).append(
                Anchor(
                    near,
                    frozenset(before_others - near),
                    frozenset(around - around_others),
                    frozenset(around_others - around),
                )
            )
    return found


def _anchored(sentence: str, anchors: dict[str, list[Anchor]]) -> bool:
    """Whether each number of ``sentence`` is anchored to one occurrence of it in the source:

    * when content words stand before it, one of them stands near that occurrence, and the
      first (usually the subject) is not a word of another number of that source sentence
      only: "Express shipping is $29.99" against "Express is $14.99 and international
      shipping is $29.99" is refused ("express" is the other number's word), while "Express
      delivery takes 2–3 days" against "Standard delivery takes 5–7 days, express 2–3 days"
      passes (its first word is the number's own);
    * of the content words after it in its clause, the first that stands around one number of
      the source sentence only must stand around this occurrence: "It is $29.99 for express
      shipping" is refused, "It takes 5–7 business days for standard delivery" passes
      ("business days" follows every number of that source sentence: it tells none apart).
    """
    tokens, breaks = _tokens(sentence)
    for i, token in enumerate(tokens):
        if not token[:1].isdigit():
            continue
        window = _words_before(tokens, i)
        after = _words_after(tokens, breaks, i)
        if not window and not after:
            continue
        found = anchors.get(token, ())
        if not any(_fits(window, after, anchor) for anchor in found):
            return False
    return True


def _fits(before: list[str], after: list[str], anchor: Anchor) -> bool:
    """Whether the words ``before`` and ``after`` a number of a reply fit this occurrence."""
    if before and (anchor.near.isdisjoint(before) or before[0] in anchor.rivals):
        return False
    telling = next((w for w in after if w in anchor.own or w in anchor.foreign), None)
    return telling is None or telling in anchor.own


@dataclass(frozen=True, slots=True)
class Source:
    """What a model reply may rest on."""

    id: str
    title: str
    text: str
    citable: bool = True  # a passage or approved answer (cited); a tool result is not

    @staticmethod
    def from_tool(name: str, result: Any) -> Source:
        return Source(f"tool:{name}", name, _flatten(result), citable=False)


def _flatten(value: Any) -> str:
    """A tool result as text: its values, so that "status: delivered" supports a claim."""
    if isinstance(value, dict):
        return " ".join(f"{k.replace('_', ' ')}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ; ".join(_flatten(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if not isinstance(value, str) else value


@dataclass(slots=True)
class _Indexed:
    source: Source
    words: frozenset[str]
    numbers: frozenset[str]
    anchors: dict[str, list[Anchor]]  # read only: shared between checkers when cached


def _index(text: str) -> tuple[frozenset[str], frozenset[str], dict[str, list[Anchor]]]:
    return frozenset(_content(text)), frozenset(_numbers(text)), _anchors(text)


# A help-centre passage or an approved answer is a source of many replies: its index is kept
# (about 0.25 ms a passage, four passages a model turn). A tool result is not kept: it holds
# a customer's order details.
_recurring_index = lru_cache(maxsize=1024)(_index)


@lru_cache(maxsize=16)
def _runs_of(text: str) -> tuple[tuple[str, ...], frozenset[tuple[str, ...]]]:
    """The words of ``text`` and every run of LEAK_WORDS of them."""
    words = tuple(_WORD.findall(text.lower()))
    return words, _runs(words)


def _runs(words: Sequence[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(words[i : i + LEAK_WORDS]) for i in range(len(words) - LEAK_WORDS + 1))


def _instruction_runs(instructions: str, canary: str | None) -> frozenset[tuple[str, ...]]:
    """The runs of ``instructions``, whose last line holds this call's canary: the runs of the
    lines before it are the same on every call and kept; only those reaching the last line
    are counted again. The same set as counting them all (a word never spans a line break)."""
    at = instructions.find(canary) if canary else -1
    cut = instructions.rfind("\n", 0, at) if at >= 0 else -1
    if cut < 0:
        return _runs(_WORD.findall(instructions.lower()))
    words, runs = _runs_of(instructions[:cut])
    tail = _WORD.findall(instructions[cut:].lower())
    return runs | _runs([*words[len(words) - (LEAK_WORDS - 1) :], *tail])


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    check: str | None = None  # the check that failed
    source: Source | None = None  # what supports the sentence, when it is a claim
    claim: bool = False


@dataclass(slots=True)
class ReplyChecker:
    """Checks one model reply, sentence by sentence, against the sources of its turn."""

    guidelines: Guidelines
    sources: list[Source]
    instructions: str = ""  # the system prompt, for the leak check
    canary: str | None = None
    seen: str = ""  # the conversation's texts: tokens and order ids the reply may repeat
    _index: list[_Indexed] = field(default_factory=list)
    _leak_runs: frozenset[tuple[str, ...]] = frozenset()  # the instructions' runs
    claims: int = 0
    cited: list[Source] = field(default_factory=list)

    def __post_init__(self) -> None:
        for source in self.sources:
            self.add_source(source)
        self._leak_runs = _instruction_runs(self.instructions, self.canary)

    def add_source(self, source: Source) -> None:
        if source not in self.sources:
            self.sources.append(source)
        index = _recurring_index if source.citable else _index
        self._index.append(_Indexed(source, *index(source.text)))
        self.seen += "\n" + source.text

    def _support(self, sentence: str) -> Source | None:
        words = _content(sentence)
        numbers = _numbers(sentence)
        best: tuple[float, Source] | None = None
        for indexed in self._index:
            if not numbers <= indexed.numbers:
                continue
            if numbers and not _anchored(sentence, indexed.anchors):
                continue
            share = len(words & indexed.words) / len(words) if words else 1.0
            if share >= SUPPORT and (best is None or share > best[0]):
                best = (share, indexed.source)
        return best[1] if best else None

    def _leaks(self, sentence: str) -> bool:
        if self.canary is not None and self.canary.lower() in sentence.lower():
            return True
        return not _runs(_WORD.findall(sentence.lower())).isdisjoint(self._leak_runs)

    def _foreign_data(self, sentence: str) -> bool:
        allowed = self.seen
        if any(span.value not in allowed for span in REPLY_CHECK.detect(sentence)):
            return True
        if any(t.group() not in allowed for t in privacy.TOKEN_RE.finditer(sentence)):
            return True
        return any(o not in allowed for o in _ORDER_ID.findall(sentence))

    def _promise_kept(self, kind: str) -> bool:
        patterns = self.guidelines.model.promises.get(kind, ())
        return any(re.search(p, s.text, re.IGNORECASE) for p in patterns for s in self.sources)

    def check(self, sentence: str) -> Verdict:
        """Whether one sentence may be sent (``sentence`` as the model wrote it)."""
        text = _CITE_MARK.sub("", sentence).strip()
        if not text:
            return Verdict(True)
        lowered = text.lower()
        if self._leaks(text):
            return Verdict(False, "prompt_leak")
        if any(p.lower() in lowered for p in self.guidelines.forbidden_phrases):
            return Verdict(False, "tone")
        if self._foreign_data(text):
            return Verdict(False, "pii")
        promise = self.guidelines.model.promise(text)
        support = self._support(text)
        if promise is not None and (support is None or not self._promise_kept(promise)):
            return Verdict(False, "policy")
        if support is None and _is_claim(text):
            return Verdict(False, "grounding", claim=True)
        if support is not None and _is_claim(text):
            self.claims += 1
            if support.citable and support not in self.cited:
                self.cited.append(support)
            return Verdict(True, source=support, claim=True)
        return Verdict(True)

    def citations(self) -> tuple[Citation, ...]:
        return tuple(Citation(ArticleId(s.id), s.title) for s in self.cited)


def _is_claim(sentence: str) -> bool:
    """A sentence that states something about the world (not a question, greeting or offer)."""
    stripped = sentence.strip()
    if stripped.endswith("?") or _NOT_CLAIM.search(stripped):
        return False
    return bool(_numbers(stripped)) or len(_content(stripped)) >= 2


def clean_reply(text: str) -> str:
    """The text a customer sees: the model's citation marks ("[returns-policy]") removed."""
    return re.sub(r"[ \t]+\n", "\n", _CITE_MARK.sub("", text)).strip()


def cut(sentences: Sequence[str], max_sentences: int) -> tuple[str, bool]:
    """The reply cut to ``max_sentences`` and ``MAX_REPLY_CHARS``; whether it was cut."""
    kept = list(sentences[:max_sentences])
    text = "".join(kept).strip()
    was_cut = len(kept) < len(sentences)
    while len(text) > MAX_REPLY_CHARS and len(kept) > 1:
        kept.pop()
        text = "".join(kept).strip()
        was_cut = True
    if len(text) > MAX_REPLY_CHARS:
        text, was_cut = text[: MAX_REPLY_CHARS - 1].rstrip() + "…", True
    return text, was_cut


def tool_text(result: Any) -> str:
    """A tool result as the model reads it."""
    return json.dumps(result, sort_keys=True, default=str)
