"""Entity extraction: order ids, contact data, zips, amounts, products and product options.

``extract(text, catalog)`` scans a customer message and returns non-overlapping ``Entity``
records, left to right; ``resolve_reference`` maps "the second one", "my last order" or "that
one" onto ids the bot listed before. Everything here is pure: no I/O, no state.

Kinds and their values:

* ``order_id``: ``#W1234567``, ``W1234567`` or ``# W1234567``; value always ``#W1234567``.
* ``email``, ``phone``, ``card``: raw values (found as the privacy stage finds them; value
  normalised) or the privacy stage's tokens such as ``<EMAIL_1>`` (value: the token).
* ``zip``: 5 digits or ZIP+4, only after "zip (code)"/"postal code" or ending an address (after
  a state code, or after a street such as "12 Main St"). A bare 5-digit number is not one.
* ``amount``: ``$45``, ``45 dollars``, ``45.99 USD``, ``$28k``, and a bare number after a
  price limit ("under 2000", "my budget is 300"; not "under 5 days"); value with two decimals
  (``"45.00"``).
* ``product``: a catalog product, tolerant of case, plurals, spacing ("t shirts"), typos and
  the synonyms in ``frontdesk.company.catalog``. Value: the catalog name (``"Hiking Boots"``).
* ``option``: an option value, value ``"name=value"`` in catalog spelling (``"size=M"``).

Options need context unless they are unmistakable. Colours, materials, styles, several-word
values ("crew neck") and values with digits ("1000ml", "A4") always count. Other plain words
("small", "wireless", "camera"), percentages and quantities that read like prose ("10 hours",
"13 inch") count with their option name next to them ("medium size", "size: small"), after
"in" if they are sizes ("in small"), or right before a product that offers them ("a large
t-shirt" -> ``size=L``). Bare numbers ("size 10") and yes/no/none need the option name. S, M
and L count when typed upper-case and standing alone ("in M" too; never the m of "I'm").

A word several options share goes to the option a mentioned product offers, then to the
catalog's own spelling over a synonym, then to color/size/material/capacity/style, then to the
value most products have. Without a catalog only the pattern kinds are found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from itertools import product as combinations

from frontdesk.company.catalog import (
    OPTION_SYNONYMS,
    PRODUCT_SYNONYMS,
    QUANTITY_RE,
    Catalog,
    corrections,
    parse_quantity,
    quantity,
    singular,
    word_key,
    words,
)
from frontdesk.pipeline import privacy


@dataclass(frozen=True, slots=True)
class Entity:
    kind: str
    value: str  # normalised: "#W1234567", "Hiking Boots", "color=blue", "45.00"
    text: str  # as typed
    start: int
    end: int


# --- patterns ---------------------------------------------------------------------------------

_ORDER_RE = re.compile(r"(?:#\s?(?=[Ww]\d)|(?<!\w))[Ww](\d{7})(?!\w)")
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
# "k" after the number means thousands ("$28k", "5k dollars").
_AMOUNT_RE = re.compile(
    rf"(?<![\w$]){_NUMBER}(k)?\s?(?:\$|(?:usd|dollars?|bucks)\b)"
    rf"|(?:(?<![\w$])usd\s?|\$\s?){_NUMBER}(?!\d)(k(?![a-z]))?(?:\s?(?:usd|dollars?)\b)?",
    re.IGNORECASE,
)
# A number without a currency after a word that sets a price limit ("laptop under 2000", "my
# budget is 300"), unless a unit follows it ("under 5 days", "less than 2 kg") or it is an age
# ("kids under 12").
_BUDGET_RE = re.compile(
    r"(?<!kids )(?<!children )(?<!ages )(?<!aged )"
    r"\b(?:under|below|less than|cheaper than|up to|at most|no more than|max(?:imum)?(?: of)?|"
    r"budget(?:\s+(?:is|of|around|about))?(?:\s*[:=])?)\s+"
    rf"{_NUMBER}(k)?(?![\d.,]*\d|\s*(?:%|[-/]|(?:days?|weeks?|months?|years?|yrs?|hours?|hrs?|"
    r"minutes?|mins?|seconds?|secs?|times?|items?|pieces?|pcs|units?|orders?|people|kids|"
    r"percent|kg|g|grams?|lbs?|pounds?|oz|ounces?|inch(?:es)?|cm|mm|m|ft|feet|foot|ml|l|"
    r"liters?|litres?|gb|tb|mb|w|watts?|mah|v|volts?|mp|hz|degrees?|miles?|km|steps?)\b))",
    re.IGNORECASE,
)
_ZIP_RE = re.compile(r"(?<![\w$.,-])\d{5}(?:-\d{4})?(?![\w-]|[.,]\d)")
_ZIP_WORD = re.compile(
    r"\b(?:zip|postal|post)\s*-?\s*(?:code)?s?\s*(?:(?:is|was|of|should be)\s+|[:=#-]\s*)?$",
    re.IGNORECASE,
)
_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
)
_STATE_END = re.compile(rf"\b(?:{'|'.join(_STATES.split())})\.?,?\s*$")
_STREET = re.compile(
    r"\b\d+\s+(?:[A-Za-z]+\s+){1,3}(?:st|street|ave|avenue|rd|road|blvd|boulevard|ln|lane|dr|"
    r"drive|way|ct|court|pl|place|pkwy|hwy)\b\.?",
    re.IGNORECASE,
)
_PRIVACY_KINDS = {privacy.EMAIL: "email", privacy.PHONE: "phone", privacy.CARD: "card"}


def _pattern_entities(text: str) -> list[Entity]:
    found: list[Entity] = []

    def add(kind: str, value: str, start: int, end: int) -> None:
        if all(end <= e.start or start >= e.end for e in found):
            found.append(Entity(kind, value, text[start:end], start, end))

    for match in privacy.TOKEN_RE.finditer(text):
        add(match.group(1).lower(), match.group(), *match.span())
    for match in _ORDER_RE.finditer(text):
        add("order_id", f"#W{match.group(1)}", *match.span())
    for span in privacy.detect(text):
        plus = "+" if span.kind == privacy.PHONE and span.value.startswith("+") else ""
        value = plus + privacy.normalise(span.kind, span.value)
        add(_PRIVACY_KINDS[span.kind], value, span.start, span.end)
    for match in _AMOUNT_RE.finditer(text):
        whole, cents, thousands = match.group(1, 2, 3) if match.group(1) else match.group(4, 5, 6)
        amount = Decimal(whole.replace(",", "") + "." + (cents or "0"))
        if thousands:
            amount *= 1000
        add("amount", f"{amount:.2f}", *match.span())
    for match in _BUDGET_RE.finditer(text):
        amount = Decimal(match.group(1).replace(",", "") + "." + (match.group(2) or "0"))
        if match.group(3):
            amount *= 1000
        add("amount", f"{amount:.2f}", match.start(1), match.end())
    for match in _ZIP_RE.finditer(text):
        before, after = text[max(0, match.start() - 80) : match.start()], text[match.end() :]
        street = _STREET.search(before) and re.match(r"\s*(?:[.,;!?]|$)", after)
        state = _STATE_END.search(before) and ("," in before[-40:] or _STREET.search(before))
        if _ZIP_WORD.search(before) or state or street:
            add("zip", match.group(), *match.span())
    return found


# --- the catalog's terms ----------------------------------------------------------------------

# How sure a term is by itself; see the module docstring. "det": only after a determiner,
# for synonyms that are common verbs ("pack my stuff" is no backpack, "my pack" is).
_FREE, _ACRONYM, _LETTER = "free", "acronym", "letter"
_CONTEXT, _NAMED, _DETERMINED = "context", "named", "det"
_NEEDS_DETERMINER = frozenset({"pack"})
_DETERMINERS = frozenset({"a", "an", "the", "my", "your", "this", "that", "our", "their", "new"})
_PRIORITY = ("color", "size", "material", "capacity", "style")
_FREE_OPTIONS = re.compile(r"colou?r|material|style")
_PROSE_UNITS = frozenset({"inch", "ft", "cup", "hour", "degree", "lb", "bar"})
_UNIT_GAPS = frozenset(d + c for d in "0123456789" for c in "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class _Choice:
    option: str  # "" for a product
    value: str  # the option value or the product name
    exact: bool = True  # False: reached through a synonym, a typo or another unit
    gate: str = _FREE


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    choices: tuple[_Choice, ...]  # all products or all options


@dataclass(frozen=True, slots=True)
class _Lexicon:
    terms: dict[str, list[tuple[frozenset[int], _Choice]]]  # word key -> (splits, choice)
    quantities: dict[tuple[str, Decimal], list[tuple[str, _Choice]]]  # -> (unit, choice)
    vocabulary: frozenset[str]
    counts: dict[tuple[str, str], int]  # (option, value) -> products offering it
    offered: dict[str, frozenset[tuple[str, str]]]  # product -> its (option, value) pairs


def _gate(option: str, written: str, bounds: frozenset[int]) -> str:
    if written.lower() in ("yes", "no", "none") or written.isdigit():
        return _NAMED
    if len(written) == 1 and written.isalpha():
        return _LETTER
    if written.endswith("%"):
        return _CONTEXT
    if written.isupper() and written.isalpha():
        return _ACRONYM
    if bounds or any(c.isdigit() for c in written) or _FREE_OPTIONS.search(option):
        return _FREE
    return _CONTEXT


@lru_cache(maxsize=16)
def _lexicon(catalog: Catalog) -> _Lexicon:
    terms: dict[str, list[tuple[frozenset[int], _Choice]]] = {}
    quantities: dict[tuple[str, Decimal], list[tuple[str, _Choice]]] = {}
    vocabulary: set[str] = set()

    def add(written: str, choice: _Choice, gate: str = "") -> None:
        parts = [word for _, _, word in words(written)]
        if not parts:  # nothing a customer could type, e.g. "—"
            return
        key, bounds = word_key(parts)
        vocabulary.update(word for word in [*parts, singular(parts[-1])] if word.isalpha())
        gate = gate or _gate(choice.option, written, bounds)
        terms.setdefault(key, []).append((bounds, replace(choice, gate=gate)))

    names = {name.casefold(): name for name in catalog.product_names}
    for name in catalog.product_names:
        add(name, _Choice("", name))
    for written, name in PRODUCT_SYNONYMS.items():
        if name.casefold() in names:
            gate = _DETERMINED if written in _NEEDS_DETERMINER else _FREE
            add(written, _Choice("", names[name.casefold()], exact=False), gate)
    counts: dict[tuple[str, str], int] = {}
    for item in catalog.products:
        for option, values in item.options:
            for value in values:
                counts[(option, value)] = counts.get((option, value), 0) + 1
    for option, value in counts:
        amount = parse_quantity(value)
        if amount is None:
            add(value, _Choice(option, value))
        else:
            gate = _CONTEXT if amount.unit in _PROSE_UNITS else _FREE
            entry = (amount.unit, _Choice(option, value, gate=gate))
            quantities.setdefault((amount.dimension, amount.amount), []).append(entry)
    for option, value, written in OPTION_SYNONYMS:
        if (option, value) in counts:
            add(written, _Choice(option, value, exact=False))
    offered = {
        p.name: frozenset((o, v) for o, vs in p.options for v in vs) for p in catalog.products
    }
    return _Lexicon(terms, quantities, frozenset(vocabulary), counts, offered)


# --- scanning ---------------------------------------------------------------------------------

_GAP = re.compile(r"\s*[-+/&]?\s*")  # what may stand between the words of one term


def _catalog_hits(text: str, lexicon: _Lexicon) -> tuple[list[_Hit], list[_Hit]]:
    """Every place a catalog term may be written: (product hits, option hits)."""
    tokens = words(text)
    spellings = [[(w, True)] + [(c, False) for c in corrections(w, lexicon.vocabulary)]
                 for _, _, w in tokens]  # fmt: skip
    found: dict[tuple[int, int, bool], list[_Choice]] = {}
    for i, (start, _, _) in enumerate(tokens):
        determined = bool(_DETERMINERS & {word for *_, word in tokens[max(0, i - 3) : i]})
        for j in range(i, min(i + 5, len(tokens))):
            if j > i and not _GAP.fullmatch(text[tokens[j - 1][1] : tokens[j][0]]):
                break
            for spelled in combinations(*spellings[i : j + 1]):
                key, bounds = word_key([word for word, _ in spelled])
                for splits, choice in lexicon.terms.get(key, ()):
                    # Typed words may split where the catalog's do, or between number and unit.
                    if any(
                        o not in splits and key[o - 1 : o + 1] not in _UNIT_GAPS for o in bounds
                    ):
                        continue
                    if choice.gate == _DETERMINED and not determined:
                        continue
                    exact = choice.exact and all(typed for _, typed in spelled)
                    place = (start, tokens[j][1], choice.option == "")
                    found.setdefault(place, []).append(replace(choice, exact=exact))
    for match in QUANTITY_RE.finditer(text):
        amount = quantity(match)
        if amount is not None:
            entries = lexicon.quantities.get((amount.dimension, amount.amount), [])
            choices = [replace(choice, exact=unit == amount.unit) for unit, choice in entries]
            found.setdefault((*match.span(), False), []).extend(choices)
    hits = {key: _Hit(key[0], key[1], tuple(dict.fromkeys(c))) for key, c in found.items() if c}
    return [h for key, h in hits.items() if key[2]], [h for key, h in hits.items() if not key[2]]


_IN_SIZE = re.compile(r"(?<![\w'’])(?:in|size)\s+(?:(?:an?|the)\s+)?$", re.IGNORECASE)
_CHAIN = re.compile(r"[\s,/-]*")  # between an option and the product it describes


@lru_cache(maxsize=512)
def _name_patterns(option: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    name = r"[\s-]*".join(re.escape(word) for word in option.split()) + r"(?:s|es)?"
    before = re.compile(rf"(?<![\w-]){name}\s*(?:[:=#-]\s*|(?:is|of)\s+)?$", re.IGNORECASE)
    return before, re.compile(rf"^\s*-?\s*{name}(?![\w-])", re.IGNORECASE)


def _named(hit: _Hit, text: str) -> frozenset[str]:
    """The hit's option names written right next to it ("size 10", "blue color")."""
    before, after = text[max(0, hit.start - 40) : hit.start], text[hit.end : hit.end + 40]
    options = {choice.option for choice in hit.choices}
    return frozenset(
        o
        for o in options
        if _name_patterns(o)[0].search(before) or _name_patterns(o)[1].search(after)
    )


def _allowed(hit: _Hit, text: str, anchor: str | None, lexicon: _Lexicon) -> list[_Choice]:
    """The hit's choices its context allows; ``anchor``: the product it stands right before."""
    typed = text[hit.start : hit.end]
    sized = _IN_SIZE.search(text[max(0, hit.start - 16) : hit.start]) is not None
    left, right = text[hit.start - 1 : hit.start], text[hit.end : hit.end + 2]
    alone = left not in ("'", "’", ".", "-", "&") and not re.match(r"['’\-&]|\.\w", right)
    offered = lexicon.offered.get(anchor or "", frozenset())

    def allows(choice: _Choice) -> bool:
        if choice.gate == _CONTEXT:
            in_size = sized and choice.option.endswith("size")
            return in_size or (choice.option, choice.value) in offered
        if choice.gate == _LETTER:
            return sized or (typed.isupper() and alone)
        return choice.gate == _FREE or (choice.gate == _ACRONYM and not typed.istitle())

    return [choice for choice in hit.choices if allows(choice)]


def _take(hits: Iterable[_Hit], taken: list[tuple[int, int]]) -> list[_Hit]:
    """Longest first (typed exactly before corrected), skipping anything overlapping."""
    chosen = []
    for hit in sorted(hits, key=lambda h: (h.start - h.end, not any(c.exact for c in h.choices))):
        if all(hit.end <= start or hit.start >= end for start, end in taken):
            chosen.append(hit)
            taken.append((hit.start, hit.end))
    return chosen


def _best(choices: Iterable[_Choice], products: Iterable[str], lexicon: _Lexicon) -> _Choice:
    offers = [lexicon.offered.get(name, frozenset()) for name in products]

    def rank(c: _Choice) -> tuple[bool, bool, int, int, str, str]:
        pair = (c.option, c.value)
        priority = _PRIORITY.index(c.option) if c.option in _PRIORITY else len(_PRIORITY)
        offered = any(pair in offer for offer in offers)
        return not offered, not c.exact, priority, -lexicon.counts.get(pair, 0), c.option, c.value

    return min(choices, key=rank)


def extract(text: str, catalog: Catalog | None = None) -> list[Entity]:
    """The entities in ``text``, left to right, without overlaps (see the module docstring)."""
    entities = _pattern_entities(text)
    if catalog is not None:
        entities += _catalog_entities(text, _lexicon(catalog), entities)
    return sorted(entities, key=lambda entity: entity.start)


def _catalog_entities(text: str, lexicon: _Lexicon, found: list[Entity]) -> list[Entity]:
    taken = [(entity.start, entity.end) for entity in found]
    product_hits, option_hits = _catalog_hits(text, lexicon)
    # 1. options with their name next to them, 2. products, 3. other options (in context).
    named = []
    for hit in option_hits:
        near = _named(hit, text)
        if near:
            named.append(replace(hit, choices=tuple(c for c in hit.choices if c.option in near)))
    chosen = [(hit, list(hit.choices), "") for hit in _take(named, taken)]
    products = _take(product_hits, taken)
    names = [_best(hit.choices, (), lexicon).value for hit in products]
    anchors = {hit.start: name for hit, name in zip(products, names, strict=True)}
    rest = _take(option_hits, taken)
    for hit in sorted(rest, key=lambda h: h.start, reverse=True):
        after = [start for start in anchors if start >= hit.end]
        nearest = min(after) if after else -1
        anchor = anchors[nearest] if _CHAIN.fullmatch(text[hit.end : nearest]) and after else ""
        allowed = _allowed(hit, text, anchor, lexicon)
        if allowed:
            chosen.append((hit, allowed, anchor))
            if anchor:
                anchors[hit.start] = anchor  # "a large blue t-shirt": "large" reaches it too
    entities = [
        Entity("product", name, text[hit.start : hit.end], hit.start, hit.end)
        for hit, name in zip(products, names, strict=True)
    ]
    for hit, choices, anchor in chosen:
        best = _best(choices, [anchor] if anchor else names, lexicon)
        value = f"{best.option}={best.value}"
        entities.append(Entity("option", value, text[hit.start : hit.end], hit.start, hit.end))
    return entities


# --- references -------------------------------------------------------------------------------

_PLACES = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "last": -1, "latest": -1, "final": -1, "newest": -1, "most recent": -1,
    "second to last": -2, "second last": -2, "next to last": -2, "penultimate": -2,
}  # fmt: skip
_PLACE = "|".join(re.escape(p) for p in sorted(_PLACES, key=len, reverse=True))
_NOUN = r"(?:one|order|item|option|product|choice|purchase)s?\b"
_PLACE_RES = (
    re.compile(rf"\b(?:the|my|your)\s+(?:very\s+)?({_PLACE})(?=\s*(?:{_NOUN}|please\b|[.!?,]|$))"),
    re.compile(rf"\b({_PLACE})\s+{_NOUN}"),
    re.compile(rf"^\W*({_PLACE}|[1-5])\W*(?:one\W*)?(?:please\W*)?$"),
    re.compile(r"(?:\bnumber|\bno\.|\boption|\bitem|\bchoice|#)\s*([1-5])\b"),
)
_OTHER = re.compile(r"\bother\s+(?:one|order|item)\b")
_THAT = re.compile(
    r"\b(?:that|this|the)\s+(?:one|order|item|product)\b|\bit\b|^\W*(?:that|this)\W*$"
)


def resolve_reference(
    text: str, candidates: Sequence[str], *, current: str | None = None
) -> str | None:
    """The candidate ``text`` points at, or None when it points at none or it is unclear.

    ``candidates`` are ids in the order the bot listed them. An id written in the text wins;
    then a place ("the second one", "2nd", "#2", "my last order", "the latest"); then "the other
    one" (needs ``current`` and exactly two candidates); then "that one", "this one" or "it",
    which resolve only when there is exactly one candidate. Several different answers: None.
    """
    lowered = text.lower()
    ids = {c: re.escape(c.lower().lstrip("#")) for c in candidates if c.strip("# ")}
    written = {c for c, id_ in ids.items() if re.search(rf"(?<!\w){id_}(?!\w)", lowered)}
    if written:
        return written.pop() if len(written) == 1 else None
    places = {
        int(found) - 1 if found.isdigit() else _PLACES[found]
        for pattern in _PLACE_RES
        for found in pattern.findall(lowered)
    }
    if places:
        place = places.pop() if len(places) == 1 else len(candidates)  # several: none
        return candidates[place] if -len(candidates) <= place < len(candidates) else None
    if _OTHER.search(lowered):
        others = [c for c in candidates if c != current]
        return others[0] if current in candidates and len(candidates) == 2 else None
    if _THAT.search(lowered) and len(candidates) == 1:
        return candidates[0]
    return None
