"""Understand stage: what the message asks, how well the knowledge covers it, and the mood.

Signals come from three places: the intent model (when the company has trained one), the
retrieval confidence (cosine similarity of the best passage), and patterns from the
guidelines (a request for a person, yes and no to an offer, greetings and thanks), which also
work without an intent model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from frontdesk.company.catalog import Catalog
from frontdesk.company.guidelines import Escalation, Guidelines, IntentNames
from frontdesk.core.types import Passage
from frontdesk.learning.intents import Prediction
from frontdesk.pipeline.entities import Entity, extract
from frontdesk.pipeline.sentiment import Mood, mood

# A greeting, or a check that someone is there ("hello? anyone there?", "are you there?").
_GREETING = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening))(?: there)?"
    r"(?:[\s!.,?]+(?:(?:is )?any(?:one|body) (?:there|here|around|home)|(?:are )?(?:you|u) "
    r"(?:still )?(?:there|here)))?|(?:is )?any(?:one|body) (?:there|here|around|home)"
    r"|(?:are )?(?:you|u) (?:still )?(?:there|here))\s*[!.,?]*\s*$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\s*(thanks|thank you|thx|ty|cheers)( (so|very) much| a lot| a bunch)?"
    r"( for (your|the) help)?\s*[!.,]*\s*$",
    re.IGNORECASE,
)
_THANKS_WORDS = r"(thanks|thank you|thx|ty|cheers)( (so|very) much| a lot)?( for (your|the) help)?"
_CLOSING = (
    r"(that'?s (all|it|everything)( for (now|today))?|nothing else|no more questions"
    r"|i'?m (all )?(good|set|done)|all (good|set)|(good)?bye( now)?|see (you|ya)"
    r"|have a (good|nice|great) (day|one|evening|weekend))"
)
# A farewell: "bye", "thanks, that's all", "no, that's everything. Have a nice day!"
_GOODBYE = re.compile(
    rf"^\s*((ok(ay)?|great|perfect|no|nope|cool)[,!. ]+)?({_THANKS_WORDS}[,!. ]+)?{_CLOSING}"
    rf"([,!. ]+({_THANKS_WORDS}|{_CLOSING}))*\s*[!.,]*\s*$",
    re.IGNORECASE,
)


# "Are you a bot?": the customer is owed a truthful answer, whatever the intent model says.
_IDENTITY = re.compile(
    r"^\s*(?:hi|hello|hey|wait|so|ok(?:ay)?|honestly|seriously)?[,!. ]*"
    r"(?:are you|r u|am i (?:talking|chatting|speaking) (?:to|with)|is this|is that)\s+"
    r"(?:a |an |just a |even a |actually a |really a |a real )?"
    r"(?:bot|robot|chat ?bot|machine|ai|a\.i\.|computer|program|human|real person|person|real)"
    r"(?: or (?:a |an )?(?:bot|robot|human|real person|person|machine|ai))?\s*[?!.]*\s*$",
    re.IGNORECASE,
)


# A question put to the store itself ("how do I unsubscribe from your emails?"). The intent
# model's out-of-scope class also holds other companies' questions ("What's Amazon's return
# policy?"), which the help centre can match as closely as the store's own: a capitalised
# word inside a sentence (a brand, a place) keeps the message out of scope.
_TO_STORE = re.compile(r"\b(?:you|your|yours|u|ur)\b", re.IGNORECASE)
_NAMED = re.compile(r"(?<![.!?]\s)(?<!^)(?<![<\w'])[A-Z][A-Za-z'-]*")
_DAYS = ("mon", "tues", "wednes", "thurs", "fri", "satur", "sun")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_NOT_NAMES = frozenset(
    {"i", "i'm", "i've", "i'd", "i'll", *_MONTHS}
    | {f"{day}day{s}" for day in _DAYS for s in ("", "s")}
)
# "amazon's return policy" typed in lower case: a possessive of another name.
_POSSESSIVE = re.compile(r"\b([a-z][\w-]*)['’]s\b", re.IGNORECASE)
_NOT_POSSESSORS = frozenset((
    "it", "what", "that", "there", "here", "let", "who", "how", "where", "when", "he", "she",
    "this", "one", "today", "everyone", "someone", "somebody", "nobody", "else",
))  # fmt: skip


def asks_the_store(text: str, own_names: Sequence[str] = ()) -> bool:
    """Whether ``text`` addresses the store ("you", "your") and names nothing else
    (:func:`names_nothing_else`)."""
    return _TO_STORE.search(text) is not None and names_nothing_else(text, own_names)


def names_nothing_else(text: str, own_names: Sequence[str] = ()) -> bool:
    """Whether ``text`` names nothing with a capital letter mid-sentence, nor anything's with
    "'s", but the store's own: "I", days, months and the words of ``own_names`` (the company's
    name, the catalog's products) do not count; nor do placeholders such as ``<PERSON_1>``. A
    message in capitals alone has no case to tell names by: only its possessives count."""
    text = text.strip()
    own = {w.lower() for name in own_names for w in name.split()}
    names, possessors = own | _NOT_NAMES, own | _NOT_POSSESSORS
    cased = text if any(c.islower() for c in text) else ""
    if any(m.group().lower() not in names for m in _NAMED.finditer(cased)):
        return False
    return all(m.group(1).lower() in possessors for m in _POSSESSIVE.finditer(text))


# "What can you do?": the help centre's article on it rarely matches so short a question, and
# the intent model reads it as out of scope.
_CAPABILITIES = re.compile(
    r"^\s*(?:(?:hi|hello|hey|so|ok(?:ay)?)[,!. ]+)?"
    r"(?:(?:what|how)(?: (?:else|kind of things|sort of things|things|exactly))? "
    r"(?:(?:can|could) (?:you|u)|(?:you|u) (?:can|could)) (?:do|help(?: me)?(?: with)?)"
    r"(?: for me)?"
    r"|what (?:are you able to do|do you do|can i ask you(?: about)?|are you for))"
    r"\s*(?:here|exactly|today)?\s*[?!.]*\s*$",
    re.IGNORECASE,
)


def _asks_capabilities(text: str) -> bool:
    """The message asks what the assistant can do ("what can you do?", "hi, what kind of
    things can you help me with?"), alone or after a short remark ("Just answer me. What can
    you do?")."""
    return _small_talk(_CAPABILITIES, text)


# "When is customer support open?", "what hours can I talk to a person?": one question about
# when people are there, which the help centre answers, not a request for one now ("is an
# agent available now?" and "when are you open? I need a human" are requests).
_WHEN_OPEN = re.compile(
    r"^\s*(?:(?:hi|hello|hey|so|ok(?:ay)?|and)[,!. ]+)?"
    r"(?:when\b|what (?:time|times|hours|days)\b|which (?:days|hours)\b|how late\b"
    r"|until what time\b|what(?:['’]s| is| are) (?:your|the)\b[^.!?]{0,40}\bhours\b"
    r"|(?:are|is|do|does)\b[^.!?]{0,40}\b(?:open|available|around|work|working)\b[^.!?]{0,20}"
    r"\b(?:on|at|during|weekends?|sundays?|saturdays?|holidays?|evenings?|nights?|hours)\b)"
    r"(?![^.!?]*\bnow\b)[^.!?]*[.?!]*\s*$",
    re.IGNORECASE,
)


def asks_when_open(text: str) -> bool:
    """The message is one question about when the store's people are there (see
    ``_WHEN_OPEN``), alone or after a short remark ("Just answer me. When is ...?")."""
    return _small_talk(_WHEN_OPEN, text)


@dataclass(frozen=True, slots=True)
class Understanding:
    passages: tuple[Passage, ...]
    confidence: float
    wants_human: bool
    affirmative: bool
    negative: bool
    greeting: bool
    thanks: bool
    goodbye: bool
    mood: Mood
    intent: Prediction | None = None
    out_of_scope: bool = False
    entities: tuple[Entity, ...] = field(default=())
    sensitive: str | None = None  # the sensitive topic the message touches (guidelines)
    identity: bool = False  # asks whether it is talking to a bot or a person
    to_store: bool = False  # asks the store itself, naming no other company (asks_the_store)
    own_names_only: bool = False  # names no other company or place (names_nothing_else)
    capabilities: bool = False  # asks what the assistant can do
    when_open: bool = False  # asks when people are there (asks_when_open)

    @property
    def best(self) -> Passage | None:
        return self.passages[0] if self.passages else None

    @property
    def sentiment(self) -> float:
        return self.mood.sentiment


def _patterns(
    escalation: Escalation,
) -> tuple[list[re.Pattern[str]], re.Pattern[str], re.Pattern[str]]:
    return _compiled(
        escalation.human_request_patterns,
        escalation.affirmative_pattern,
        escalation.negative_pattern,
    )


@lru_cache(maxsize=64)
def _compiled(
    human: tuple[str, ...], yes: str, no: str
) -> tuple[list[re.Pattern[str]], re.Pattern[str], re.Pattern[str]]:
    return (
        [re.compile(p, re.IGNORECASE) for p in human],
        re.compile(yes, re.IGNORECASE),
        re.compile(no, re.IGNORECASE),
    )


def _small_talk(pattern: re.Pattern[str], text: str) -> bool:
    """The whole message is it, or its last sentence is and what comes before is a short
    remark, not a question ("Just answer me. Thanks a lot"; not "How long do refunds take?
    Thanks")."""
    if pattern.match(text):
        return True
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p]
    if len(parts) < 2 or not pattern.match(parts[-1]):
        return False
    before = " ".join(parts[:-1])
    return "?" not in before and len(before.split()) <= 4


def intent_articles(intent: Prediction | None, names: IntentNames) -> tuple[str, ...]:
    """The help-centre articles that answer ``intent`` (``intents.articles``), when the model
    is confident of it; otherwise none."""
    if intent is None or intent.out_of_scope or intent.confidence < names.min_confidence:
        return ()
    return names.articles.get(intent.label, ())


def needs_knowledge(text: str, guidelines: Guidelines) -> bool:
    """False for messages whose reply never depends on the knowledge base (a request for a
    person, a bare greeting or thanks): their turn skips the sentence encoder."""
    human, _, _ = _patterns(guidelines.escalation)
    return not (
        _GREETING.match(text)
        or _THANKS.match(text)
        or _GOODBYE.match(text)
        or (any(p.search(text) for p in human) and not asks_when_open(text))
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """What the text alone tells, before retrieval and the intent model: a turn works it out
    while its question is being embedded (:func:`read`)."""

    text: str
    guidelines: Guidelines
    wants_human: bool
    affirmative: bool
    negative: bool
    greeting: bool
    thanks: bool
    goodbye: bool
    mood: Mood
    entities: tuple[Entity, ...]
    sensitive: str | None
    identity: bool = False
    to_store: bool = False
    own_names_only: bool = False
    capabilities: bool = False
    when_open: bool = False


def read(
    text: str,
    guidelines: Guidelines,
    *,
    earlier: Sequence[str] = (),
    catalog: Catalog | None = None,
    typed: str | None = None,
) -> Reading:
    """The guidelines' patterns, the mood and the entities of ``text``; ``typed`` is the
    message before the spelling stage, if it differs."""
    human, yes, no = _patterns(guidelines.escalation)
    farewell = _small_talk(_GOODBYE, text)
    own_only = names_nothing_else(
        text, (guidelines.company_name, *(catalog.product_names if catalog else ()))
    )
    return Reading(
        text=text,
        guidelines=guidelines,
        wants_human=any(p.search(text) for p in human),
        affirmative=bool(yes.search(text)),
        negative=bool(no.search(text)),
        greeting=_small_talk(_GREETING, text),
        thanks=_small_talk(_THANKS, text) and not farewell,
        goodbye=farewell,
        mood=mood(text, earlier),
        entities=tuple(extract(text, catalog)),
        # A sensitive topic counts as understood and as typed (before spelling correction).
        sensitive=guidelines.escalation.sensitive_topic(text)
        or (guidelines.escalation.sensitive_topic(typed) if typed else None),
        identity=_small_talk(_IDENTITY, text),
        to_store=_TO_STORE.search(text) is not None and own_only,
        own_names_only=own_only,
        capabilities=_asks_capabilities(text),
        when_open=asks_when_open(text),
    )


def understand(
    text: str,
    passages: Sequence[Passage],
    guidelines: Guidelines,
    *,
    intent: Prediction | None = None,
    earlier: Sequence[str] = (),
    catalog: Catalog | None = None,
    typed: str | None = None,
    reading: Reading | None = None,
) -> Understanding:
    """Read the (pseudonymized) text with the passages retrieved for it, the intent model's
    prediction (if any) and the customer's earlier messages; ``typed`` is the message before
    the spelling stage, if it differs. ``reading``: :func:`read` of the same text and
    guidelines, already done (its ``earlier``, ``catalog`` and ``typed`` are the ones used)."""
    if reading is None or reading.text != text or reading.guidelines is not guidelines:
        reading = read(text, guidelines, earlier=earlier, catalog=catalog, typed=typed)
    names = guidelines.intents
    confidence = passages[0].similarity if passages else 0.0
    said = (
        intent.label
        if intent is not None
        and not intent.out_of_scope
        and intent.confidence >= names.min_confidence
        else None
    )
    return Understanding(
        passages=tuple(passages),
        confidence=max(0.0, min(1.0, confidence)),
        wants_human=reading.wants_human or said == names.talk_to_human,
        affirmative=reading.affirmative or said == names.affirm,
        negative=reading.negative or said == names.deny,
        greeting=reading.greeting or said == names.greeting,
        thanks=(reading.thanks or said == names.thanks) and not reading.goodbye,
        goodbye=reading.goodbye or said == names.goodbye,
        mood=reading.mood,
        intent=intent,
        out_of_scope=intent is not None and intent.out_of_scope,
        entities=reading.entities,
        sensitive=reading.sensitive,
        identity=reading.identity,
        to_store=reading.to_store,
        own_names_only=reading.own_names_only,
        capabilities=reading.capabilities,
        when_open=reading.when_open,
    )
