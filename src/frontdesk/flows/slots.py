"""Slot types: how a flow reads a value out of a customer's message.

Each type is a function of the ``Turn`` (the pseudonymized text, its entities, the catalog, the
conversation's memory and the flow's slots so far) that returns the value, ``None`` when the
message does not give one, or ``Invalid`` with a sentence saying what was wrong. Some types
also fill themselves without asking (``auto``): an order with one item needs no "which item?".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from frontdesk.company.catalog import Catalog, singular
from frontdesk.pipeline import privacy
from frontdesk.pipeline.entities import Entity, resolve_reference
from frontdesk.shop.records import ProductRecord, Variant, dollars, options_text
from frontdesk.shop.search import (
    alternatives,
    boolean_options,
    closest_variant,
    has_options,
    quantity_options,
)


@dataclass(frozen=True, slots=True)
class Invalid:
    message: str


@dataclass(slots=True)
class Turn:
    text: str
    entities: tuple[Entity, ...] = ()
    catalog: Catalog | None = None
    products: Sequence[ProductRecord] = ()
    memory: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)

    def values(self, kind: str) -> list[str]:
        return [e.value for e in self.entities if e.kind == kind]

    def options(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for value in self.values("option"):
            name, _, option = value.partition("=")
            found[name] = option
        return found

    def options_for(self, product: str) -> dict[str, str]:
        """The options in the message read as if it named ``product``: "2 liters" about a tea
        kettle is its "2 liters", not another product's "2L"; "in size 9" about hiking boots
        is a boot size."""
        if self.catalog is None:
            return self.options()
        from frontdesk.pipeline.entities import extract

        found: dict[str, str] = {}
        for entity in extract(f"{self.text} ({product})", self.catalog):
            if entity.kind == "option":
                name, _, value = entity.value.partition("=")
                found.setdefault(name, value)
        return found

    def product_record(self, name: str | None) -> ProductRecord | None:
        if not name:
            return None
        return next((p for p in self.products if p.name.lower() == name.lower()), None)


Extract = Callable[[Turn], Any]


@dataclass(frozen=True, slots=True)
class SlotType:
    extract: Extract
    auto: Callable[[Turn], Any] | None = None
    prefill: bool = False  # read from the flow's first message as soon as it starts
    from_opening: bool = True  # may be read from the flow's first message when reached


SLOT_TYPES: dict[str, SlotType] = {}


def slot_type(
    name: str,
    auto: Callable[[Turn], Any] | None = None,
    *,
    prefill: bool = False,
    from_opening: bool = True,
) -> Callable[[Extract], Extract]:
    def register(extract: Extract) -> Extract:
        SLOT_TYPES[name] = SlotType(extract, auto, prefill, from_opening)
        return extract

    return register


# --- identity ------------------------------------------------------------------------------

_NAME_ZIP = re.compile(
    r"(?:(?:my name is|name is|name's|i am|i'm|this is|it's|it is)\s+)?"
    rf"\b([A-Za-z][A-Za-z'-]+)\s+([A-Za-z][A-Za-z'-]+)\b{privacy.ZIP_CUE}(\d{{5}})\b",
    re.IGNORECASE,
)
_TOKEN_ZIP = re.compile(rf"(<PERSON_\d+>){privacy.ZIP_CUE}(\d{{5}})\b", re.IGNORECASE)
_NOT_NAMES = frozenset(
    [
        "my",
        "the",
        "is",
        "and",
        "zip",
        "code",
        "postal",
        "name",
        "i",
        "am",
        "im",
        "it",
        "this",
        "order",
        "email",
        "please",
        "hi",
        "hello",
        "hey",
    ]
)


@slot_type("identity", prefill=True)
def identity(turn: Turn) -> Any:
    emails = turn.values("email")
    if emails:
        return {"method": "email", "email": emails[0]}
    # A name is pseudonymized before the flows see it: its token goes to the tool, which
    # opens it from the vault inside the call.
    token = _TOKEN_ZIP.search(turn.text)
    if token is not None:
        return {"method": "name_zip", "name": token.group(1), "zip": token.group(2)}
    for match in _NAME_ZIP.finditer(turn.text):
        first, last, zip_code = match.groups()
        if first.lower() in _NOT_NAMES or last.lower() in _NOT_NAMES:
            continue
        return {"method": "name_zip", "name": f"{first} {last}", "zip": zip_code}
    if re.search(r"\b\d{5}\b", turn.text) or re.search(r"@", turn.text):
        return Invalid("I need your first name, last name and zip code together, or your email.")
    return None


@slot_type("email", prefill=True)
def email(turn: Turn) -> Any:
    found = turn.values("email")
    return found[0] if found else None


# --- orders ----------------------------------------------------------------------------------

_BAD_ORDER = re.compile(r"(?<!\w)#?\s?[Ww]\d{1,6}(?!\d)|(?<!\w)#?\s?[Ww]\d{8,}")


def _only_order(turn: Turn) -> Any:
    listed = list(turn.memory.get("listed_orders", []))
    return listed[0] if len(listed) == 1 else None


# An order pointed at by its status: "the pending one", "my delivered order", "the one that's
# pending", "pending" alone; not "has my order been delivered?".
_STATUSES = r"(pending|processed|delivered|cancell?ed)"
_STATUS = re.compile(
    rf"\b(?:the|my)\s+{_STATUSES}\s+(?:one|order)\b"
    rf"|\bthe\s+one\s+(?:that\s+is|that's|thats|which\s+is)\s+(?:still\s+)?{_STATUSES}\b"
    rf"|^\W*{_STATUSES}\W*$",
    re.IGNORECASE,
)


@slot_type("order_id", auto=_only_order, prefill=True)
def order_id(turn: Turn) -> Any:
    found = turn.values("order_id")
    if found:
        return found[0]
    listed = list(turn.memory.get("listed_orders", []))
    current = turn.memory.get("order_id")
    for candidates in (listed, [current] if current else []):
        picked = resolve_reference(turn.text, candidates, current=current) if candidates else None
        if picked:
            return picked
    # "I want to return the earbuds": the one listed order that holds them.
    holding = dict(turn.memory.get("listed_order_products", {}))
    named = set(turn.values("product"))
    having = [o for o in listed if named & set(holding.get(o, ()))] if named else []
    if len(having) == 1:
        return having[0]
    # "the pending one": the one listed order with that status.
    status = _STATUS.search(turn.text)
    if status is not None:
        word = next(g for g in status.groups() if g)
        wanted = word.lower().replace("canceled", "cancelled")
        statuses = dict(turn.memory.get("listed_order_statuses", {}))
        with_status = [o for o in listed if statuses.get(o) == wanted]
        if len(with_status) == 1:
            return with_status[0]
    if _BAD_ORDER.search(turn.text):
        return Invalid("Order ids look like #W1234567 (a W and seven digits).")
    return None


_CANCEL_REASONS = (
    (
        re.compile(r"no longer need|don'?t need|do not need|not needed|changed my mind", re.I),
        "no longer needed",
    ),
    (
        re.compile(r"mistake|by accident|accidentally|wrong (item|order)|didn'?t mean", re.I),
        "ordered by mistake",
    ),
)


@slot_type("cancel_reason", prefill=True)
def cancel_reason(turn: Turn) -> Any:
    for pattern, reason in _CANCEL_REASONS:
        if pattern.search(turn.text):
            return reason
    return None


def _order_items(turn: Turn) -> list[dict[str, Any]]:
    order = turn.slots.get("order") or {}
    items: list[dict[str, Any]] = list(order.get("items", []))
    return items


def _head(name: str) -> str:
    """The head noun of a product name, singular: "Wireless Earbuds" -> "earbud"."""
    last = name.lower().split()[-1] if name.strip() else name.lower()
    return singular(last)


def _pick_items(turn: Turn, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lowered = turn.text.lower()
    products = {p.lower() for p in turn.values("product")}
    options = turn.options()
    picked = [
        i
        for i in items
        if i["name"].lower() in products
        or re.search(rf"\b{re.escape(_head(i['name']))}(e?s)?\b", lowered)
        or i["item_id"] in turn.text
    ]
    if len(picked) > 1 and options:
        narrowed = [
            i
            for i in picked
            if all(i["options"].get(k) == v for k, v in options.items() if k in i["options"])
        ]
        picked = narrowed or picked
    if not picked:
        ids = [i["item_id"] for i in items]
        which = resolve_reference(turn.text, ids)
        if which:
            picked = [i for i in items if i["item_id"] == which][:1]
    return picked


_ALL = re.compile(
    r"\b(all|everything|every item|both|the whole (order|thing)|entire order)\b", re.I
)


def _items_value(picked: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum((Decimal(str(i["price"])) for i in picked), Decimal("0.00"))
    return {
        "ids": [i["item_id"] for i in picked],
        "text": _items_text(picked),
        "total_text": dollars(total),
    }


@slot_type("items")
def items(turn: Turn) -> Any:
    available = _order_items(turn)
    if _ALL.search(turn.text):
        return _items_value(available)
    picked = _pick_items(turn, available)
    if picked:
        return _items_value(picked)
    if turn.values("product"):
        return Invalid("That isn't in this order. The order has:\n" + _items_text(available))
    return None


def _items_text(items: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {i['label']}" for i in items)


def _item_value(item: dict[str, Any]) -> dict[str, Any]:
    return {"item_id": item["item_id"], "label": item["label"], "price": item["price"]}


def _single_item(turn: Turn) -> Any:
    available = _order_items(turn)
    return _item_value(available[0]) if len(available) == 1 else None


@slot_type("item", auto=_single_item)
def item(turn: Turn) -> Any:
    available = _order_items(turn)
    picked = _pick_items(turn, available)
    ids = list(dict.fromkeys(i["item_id"] for i in picked))
    if len(ids) == 1:
        return _item_value(picked[0])
    if len(ids) > 1:
        return Invalid("Which one exactly? The order has:\n" + _items_text(picked))
    if turn.values("product"):
        return Invalid("That isn't in this order. The order has:\n" + _items_text(available))
    return None


@slot_type("new_variant")
def new_variant(turn: Turn) -> Any:
    """Another variant of the chosen item's product, from the options in the message, or one
    of the in-stock alternatives offered just before ("the first one", "the red one")."""
    wanted = (turn.slots.get("item") or {}).get("item_id")
    chosen = next((i for i in _order_items(turn) if i["item_id"] == wanted), None)
    if chosen is None:
        return None
    record = turn.product_record(chosen["name"])
    if record is None:
        return Invalid(f"I can't find {chosen['name']} in the catalog any more.")
    said = turn.options_for(chosen["name"])
    # A bare quantity is one of this product's values ("20 hours" of a speaker's battery life):
    # the question was about this item.
    said = {**quantity_options(turn.text, record), **said}
    changes = {k: v for k, v in said.items() if k in chosen["options"]}
    changes.update(
        {
            k: v
            for k, v in boolean_options(turn.text, record).items()
            if k in chosen["options"] and v != chosen["options"].get(k)
        }
    )
    picked = _offered(turn, record, chosen["item_id"], changes)
    if picked is not None:
        return _variant_choice(record, chosen, picked)
    if not changes:
        return None
    variant = closest_variant(record, chosen["options"], changes)
    if variant is None:
        offered = {k: sorted({v.options.get(k, "") for v in record.in_stock()}) for k in changes}
        listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in offered.items())
        return Invalid(
            f"{record.name} doesn't come in {options_text(changes)}. In stock: {listing}."
        )
    if variant.item_id == chosen["item_id"]:
        return Invalid(
            f"That is the one you have ({chosen['label']}). What would you like instead?"
        )
    if not variant.available:
        others = alternatives(
            record,
            {**chosen["options"], **changes},
            exclude=[chosen["item_id"]],
            asked=changes,
        )
        listing = "\n".join(f"- {options_text(v.options)}: {dollars(v.price)}" for v in others)
        turn.memory["offered_variants"] = {
            "for": chosen["item_id"],
            "item_ids": [v.item_id for v in others],
        }
        return Invalid(
            f"Sorry, {record.name} in {options_text(variant.options)} is out of stock. "
            f"These are in stock and closest to it:\n{listing}\nWhich would you like?"
        )
    return _variant_choice(record, chosen, variant)


def _offered(
    turn: Turn, record: ProductRecord, item_id: str, said: dict[str, str]
) -> Variant | None:
    """The alternative just offered for ``item_id`` that the message picks: by its place in
    the list, or as the only one with the options the message names."""
    offered = turn.memory.get("offered_variants") or {}
    if offered.get("for") != item_id:
        return None
    listed = [v for v in (record.variant(i) for i in offered.get("item_ids", [])) if v]
    picked = resolve_reference(turn.text, [v.item_id for v in listed])
    if picked is None and said:
        fitting = [v for v in listed if has_options(v, said)]
        picked = fitting[0].item_id if len(fitting) == 1 else None
    if picked is None and listed:
        # "the medium one": a value that tells the listed variants apart, as a word (not a
        # one-letter size: the m of "I'm").
        shared = set.intersection(*({x.lower() for x in v.options.values()} for v in listed))
        lowered = turn.text.lower()

        def named(v: Variant) -> int:
            return sum(
                1
                for x in {x.lower() for x in v.options.values()} - shared
                if len(x) > 1 and re.search(rf"(?<!\w){re.escape(x)}(?!\w)", lowered)
            )

        scores = sorted(((named(v), v.item_id) for v in listed), reverse=True)
        if scores[0][0] > 0 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
            picked = scores[0][1]
    return record.variant(picked) if picked else None


def _variant_choice(record: ProductRecord, chosen: dict[str, Any], variant: Variant) -> Any:
    difference = variant.price - Decimal(str(chosen["price"]))
    return {
        "item_id": variant.item_id,
        "label": f"{record.name} ({options_text(variant.options)})",
        "price": float(variant.price),
        "difference": float(difference),
        "difference_text": _difference_text(difference),
    }


def _difference_text(difference: Decimal) -> str:
    if difference > 0:
        return f"The new one costs {dollars(difference)} more, charged to"
    if difference < 0:
        return f"The new one costs {dollars(-difference)} less, refunded to"
    return "The price is the same; any difference would go to"


# --- payment ---------------------------------------------------------------------------------

_METHOD_WORDS = (
    (re.compile(r"\bgift\s?card\b", re.I), "gift_card"),
    (re.compile(r"\bpay\s?pal\b", re.I), "paypal"),
    (
        re.compile(
            r"\b(credit|debit)\s?card\b|\bvisa\b|\bmaster\s?card\b|\bamex\b|\bdiscover\b", re.I
        ),
        "credit_card",
    ),
)
_ORIGINAL = re.compile(
    r"\b(original|same (card|method|payment|way)|how i paid|back to (my|the) (card|account)|"
    r"where it came from)\b",
    re.I,
)


def _payment(turn: Turn, allow_original: bool) -> Any:
    methods: list[dict[str, Any]] = list(
        (turn.slots.get("profile") or {}).get("payment_methods", [])
    )
    paid_with = (turn.slots.get("order") or {}).get("paid_with")
    if allow_original and _ORIGINAL.search(turn.text) and paid_with:
        found = next((m for m in methods if m["id"] == paid_with), None)
        return {
            "id": paid_with,
            "label": found["label"] if found else "the original payment method",
        }
    for pattern, source in _METHOD_WORDS:
        if pattern.search(turn.text):
            matching = [m for m in methods if m["source"] == source]
            if not matching:
                return Invalid(
                    f"I don't see a {source.replace('_', ' ')} on your account. "
                    "You have: " + ", ".join(m["label"] for m in methods) + "."
                )
            if len(matching) > 1:
                digits = re.findall(r"\b\d{4}\b", turn.text)
                matching = [m for m in matching if any(d in m["label"] for d in digits)] or matching
            return {"id": matching[0]["id"], "label": matching[0]["name"]}
    return None


@slot_type("refund_method")
def refund_method(turn: Turn) -> Any:
    return _payment(turn, allow_original=True)


def _no_difference(turn: Turn) -> Any:
    """No price difference to settle: the original payment method, without asking."""
    new = turn.slots.get("new") or {}
    paid_with = (turn.slots.get("order") or {}).get("paid_with")
    if new and new.get("difference") == 0 and paid_with:
        methods = (turn.slots.get("profile") or {}).get("payment_methods", [])
        found = next((m for m in methods if m["id"] == paid_with), None)
        return {"id": paid_with, "label": found["name"] if found else "original payment method"}
    return None


@slot_type("payment_method", auto=_no_difference)
def payment_method(turn: Turn) -> Any:
    return _payment(turn, allow_original=True)


@slot_type("new_payment_method")
def new_payment_method(turn: Turn) -> Any:
    """A payment method other than the one the saved ``order`` is paid with (changing how an
    order is paid): the order's own is refused here, before the confirmation."""
    value = _payment(turn, allow_original=False)
    paid_with = (turn.slots.get("order") or {}).get("paid_with")
    if not isinstance(value, dict) or value.get("id") != paid_with:
        return value
    methods = (turn.slots.get("profile") or {}).get("payment_methods", [])
    others = [str(m["label"]) for m in methods if m["id"] != paid_with]
    choice = f"You can choose: {', '.join(others)}." if others else "It's the only one you have."
    return Invalid(f"The order is already paid with your {value['label']}. {choice}")


_CHANGES = (
    (re.compile(r"\baddress\b|\bship(ping)? to\b|\bdeliver(y|ed)? to\b", re.I), "address"),
    (re.compile(r"\bpay(ment|ing)?\b|\bcard\b|\bpaypal\b|\bgift\s?card\b", re.I), "payment"),
    (
        re.compile(r"\b(item|size|colou?r|variant|option|material|style|swap|product)s?\b", re.I),
        "items",
    ),
)


@slot_type("order_change", prefill=True)
def order_change(turn: Turn) -> Any:
    for pattern, kind in _CHANGES:
        if pattern.search(turn.text):
            return kind
    if turn.options():
        return "items"
    return None


# --- addresses -------------------------------------------------------------------------------

# Between the parts of an address: a comma, or spaces alone ("12 Main St Denver CO 80202").
_SEP = r"(?:\s*,\s*|\s+)"
_STATE = rf"(?i:{privacy.STATE})\b"
_STATE_BY_NAME = {name.casefold(): code for name, code in privacy.STATES.items()}
_ADDRESS = re.compile(
    # The street line is usually a vault token (it is personal data), whose end is clear; typed
    # as it is (the detector missed it), a comma must end it.
    rf"(?:(?P<token><ADDRESS_\d+>){_SEP}|(?P<a1>\d+[A-Za-z]?\s+[A-Za-z0-9 .'-]+?)\s*,\s*)"
    r"(?:(?P<a2>(?i:apt|apartment|suite|ste|unit|floor|fl|room|#)\.?\s*[A-Za-z0-9-]+)"
    rf"{_SEP})?"
    rf"(?P<city>[A-Za-z][A-Za-z .'-]*?){_SEP}(?P<state>{_STATE})\.?\s*,?\s*(?P<zip>\d{{5}})\b",
)


@slot_type("address", prefill=True)
def address(turn: Turn) -> Any:
    match = _ADDRESS.search(turn.text)
    if match is None:
        # Something like an address: a street line the detector took (its zip may be inside
        # the token), or a number, a word and a zip.
        typed = re.search(r"\d+\s+\w+", turn.text) and re.search(r"\b\d{5}\b", turn.text)
        if typed or "<ADDRESS_" in turn.text:
            return Invalid(
                "I couldn't read that address. Please write it as: street, (apartment,) city, "
                "state, zip; for example 12 Main St, Apt 3, Denver, CO 80202."
            )
        return None
    parts = match.groupdict()
    street = (parts["token"] or parts["a1"]).strip()
    unit = (parts["a2"] or "").strip()
    city = " ".join(parts["city"].split()).title()
    state = " ".join(parts["state"].split())
    state = _STATE_BY_NAME.get(state.casefold(), state.upper())
    return {
        "address1": street,
        "address2": unit,
        "city": city,
        "state": state,
        "zip": parts["zip"],
        "country": "USA",
        "text": ", ".join(p for p in (street, unit, city) if p) + f", {state} {parts['zip']}",
    }


# --- products and sales ----------------------------------------------------------------------

_UNDER = re.compile(
    r"\b(under|below|less than|max(imum)?|up to|at most|budget|no more than|cheaper than)\b", re.I
)


@slot_type("product", prefill=True)
def product(turn: Turn) -> Any:
    found = turn.values("product")
    if found:
        return found[0]
    remembered = turn.memory.get("product")
    if remembered and re.search(
        r"\b(it|they|them|that|those|this|these|one|ones)\b", turn.text, re.I
    ):
        return remembered
    return None


@slot_type("product_query", prefill=True)
def product_query(turn: Turn) -> Any:
    """What the customer is shopping for. A message with options but no product carries the
    product from before ("and the blue one in M?"), with the earlier options it does not
    replace."""
    named = turn.values("product")
    distinct = list(dict.fromkeys(named))
    if len(distinct) > 1 and _COMPARE.search(turn.text):
        # "the speaker or the earbuds?", "compare the tablet and the e-reader"
        return {"product": None, "products": distinct[:4], "options": {}, "max_price": None}
    amounts = turn.values("amount")
    remembered = turn.memory.get("product")
    # Options about the remembered product are read as if it were named.
    options = turn.options_for(remembered) if not named and remembered else turn.options()
    name = named[0] if named else remembered
    record = turn.product_record(name)
    if record is not None:
        options.update(boolean_options(turn.text, record))
        # "size 13" of boots that stop at 12: kept, so the search says it is not made.
        offered_names = {k for v in record.variants for k in v.options}
        for said, value in re.findall(r"\b(size|colou?r)\s+([A-Za-z0-9]+)\b", turn.text, re.I):
            option = "color" if said.lower().startswith("colo") else said.lower()
            if value.lower() in _NOT_A_VALUE:  # "what size do you have", "size chart"
                continue
            if option in offered_names and option not in options:
                options[option] = value
    # "a cheaper one": under the lowest price the last search showed, for the same product (or
    # for any, after a search across products).
    last = dict(turn.memory.get("shown") or {})
    shown = last.get("min_price")
    cheaper = bool(_CHEAPER.search(turn.text)) and shown is not None and name == last.get("product")
    if not named and not options and not amounts and not cheaper:
        return _not_in_catalog(turn)
    carried = dict(turn.memory.get("options", {})) if not named or name == remembered else {}
    carried.update(options)
    if record is not None:
        offered = {k for v in record.variants for k in v.options}
        carried = {k: v for k, v in carried.items() if k in offered}
    max_price = None
    if amounts and (_UNDER.search(turn.text) or not named):
        max_price = amounts[0]
    elif cheaper:
        max_price = f"{Decimal(str(shown)) - Decimal('0.01'):.2f}"
    elif turn.memory.get("max_price") and not named:
        max_price = turn.memory.get("max_price")
    query: dict[str, Any] = {"product": name, "options": carried, "max_price": max_price}
    if cheaper:
        query["cheaper_than"] = str(shown)
        # Nothing with the same options below that price: said so, rather than showing other
        # sizes or colours as if they fitted.
        if record is not None and not any(
            v.price < Decimal(str(shown))
            and has_options(v, {k: str(x) for k, x in carried.items()})
            for v in record.in_stock()
        ):
            query["nothing_cheaper"] = True
    return query


# Words after "size" or "colour" that are not its value.
_NOT_A_VALUE = frozenset((
    "do", "does", "did", "is", "are", "was", "were", "be", "am", "will", "would", "can",
    "could", "should", "have", "has", "had", "for", "of", "in", "on", "at", "to", "and", "or",
    "but", "the", "a", "an", "you", "your", "i", "we", "they", "it", "its", "my", "me", "this",
    "that", "these", "those", "which", "what", "please", "options", "option", "choices",
    "choice", "range", "available", "availability", "chart", "charts", "guide", "guides",
    "table", "tables", "info", "information",
))  # fmt: skip
# Two products named to be weighed against each other (not "a backpack for my laptop").
_COMPARE = re.compile(
    r"\b(compare|comparison|vs|versus|or|difference|differences|better|best|between)\b", re.I
)
_CHEAPER = re.compile(r"\b(cheaper|less expensive|more affordable|lower[- ]priced)\b", re.I)
# "What do you sell?", "what kind of products do you have?"
_RANGE = re.compile(
    r"\bwhat(?: (?:kinds?|sorts?|types?) of)?(?: (?:products?|things|stuff|items))?"
    r" (?:do|does|can) (?:you|u|ya)(?: guys| all)? (?:sell|carry|stock|offer|have)\b"
    r"(?! (?:in|for) (?:the|a|an|my|this|that)\b)",
    re.I,
)
# "Do you sell tents?", "looking for a sleeping bag": what the customer asked for, when the
# catalog has no product of that name; the words that end it cannot start it ("what name do
# you have for me?" asks for nothing).
_AFTER_THING = r"(?:for|with|in|on|under|that|which|please|today|now|online|at|from)"
_ASKED_FOR = re.compile(
    r"\b(?:(?:do|does|can) (?:you|u|ya)(?: guys| all)? (?:sell|carry|stock|have)|have you got|"
    r"(?:looking|shopping|searching) for|(?:want|like|need|going) to (?:buy|purchase|get)|"
    r"wanna (?:buy|get))\s+(?:any |a |an |some |the )?"
    rf"(?!{_AFTER_THING}\b)(?P<thing>[a-z][a-z'-]*(?: [a-z][a-z'-]*){{0,3}}?)\s*"
    rf"(?:[?.!,]|$|\b{_AFTER_THING}\b)",
    re.I,
)
_VAGUE = frozenset((
    "anything", "something", "stuff", "things", "thing", "products", "product", "items", "item",
    "it", "them", "one", "ones", "that", "this", "these", "those", "other", "more", "else",
    "everything", "gifts", "gift", "ideas", "idea", "recommendations", "help", "information",
    "info", "your", "my", "our", "out", "someone", "somebody", "a", "an",
))  # fmt: skip
# Things a customer asks a shop for that are not goods ("do you have a store near me?", "any
# deals?"): the help centre's business, not the catalog's.
_NOT_GOODS = frozenset((
    "store", "stores", "shop", "shops", "location", "locations", "branch", "branches", "outlet",
    "outlets", "showroom", "office", "website", "app", "discount", "discounts", "code", "codes",
    "coupon", "coupons", "sale", "sales", "deal", "deals", "offer", "offers", "promotion",
    "promotions", "shipping", "delivery", "return", "returns", "refund", "refunds", "warranty",
    "guarantee", "policy", "account", "order", "orders", "job", "jobs", "card", "cards",
    "catalog", "catalogue", "newsletter", "membership", "rewards", "points", "program",
))  # fmt: skip


def _not_in_catalog(turn: Turn) -> dict[str, Any] | None:
    """The store's range when the customer asks what it sells, or what they asked for that
    it does not sell (with the range); None when the message names nothing to look for."""
    in_stock = sorted(r.name for r in turn.products if r.in_stock())
    if not in_stock:
        return None
    listing: dict[str, Any] = {
        "product": None,
        "options": {},
        "max_price": None,
        "range": ", ".join(in_stock),
    }
    if _RANGE.search(turn.text):
        return listing | {"asked_range": True}
    thing = _wanted(_ASKED_FOR.search(turn.text))
    return None if thing is None else listing | {"missing": thing}


def _wanted(asked: re.Match[str] | None) -> str | None:
    """The thing an ``_ASKED_FOR`` match names, unless it is vague or not goods."""
    if asked is None:
        return None
    thing = asked.group("thing").strip(" '-").lower()
    said = thing.split()
    if not said or said[0] in _VAGUE or said[-1] in _VAGUE or _NOT_GOODS.intersection(said):
        return None
    return thing


# Verbs whose object can only be goods: "do you sell sleeping bags?", "I want to buy a tent"
# ("do you have a size guide?" and "looking for my order number" are not about goods).
_BUYING = re.compile(r"\b(?:sell|carry|stock|buy|purchase|shopping for)\s", re.I)


def asks_to_buy(text: str) -> str | None:
    """The thing the customer asks to buy, or asks whether the store sells, when the verb says
    it is goods and the thing is not vague; None otherwise. It lets a shopping request reach
    the product search when the help centre has a confident passage that only shares a word
    with it ("I want to buy a sleeping bag" and the bag-care article)."""
    asked = _ASKED_FOR.search(text)
    if asked is None or not _BUYING.search(text[asked.start() : asked.start("thing")] + " "):
        return None
    return _wanted(asked)


_NAME = re.compile(
    r"(?:my name is|name's|i am|i'm|this is|call me)\s+"
    r"([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+){0,2})",
    re.I,
)


@slot_type("person_name", from_opening=False)
def person_name(turn: Turn) -> Any:
    token = re.search(r"<PERSON_\d+>", turn.text)
    if token is not None:  # the name itself is in the vault; the lead tool opens it
        return token.group()
    match = _NAME.search(turn.text)
    if match:
        return match.group(1).strip()
    bare = turn.text.strip(" .!")
    if re.fullmatch(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]+(?:\s+[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]+){0,2}", bare):
        return " ".join(w[:1].upper() + w[1:] for w in bare.split())
    return None


@slot_type("interest", from_opening=False)
def interest(turn: Turn) -> Any:
    text = turn.text.strip()
    return text[:300] if turn.values("product") or len(text.split()) >= 2 else None


@slot_type("budget")
def budget(turn: Turn) -> Any:
    amounts = turn.values("amount")
    if amounts:
        return amounts[0]
    if re.search(
        r"\b(no budget|not sure|flexible|don'?t know|no idea|none|any)\b", turn.text, re.I
    ):
        return "not sure"
    bare = re.fullmatch(r"\s*\$?\s*(\d{1,7})(?:\.(\d{2}))?\s*", turn.text)
    if bare:
        return f"{bare.group(1)}.{bare.group(2) or '00'}"
    return None


@slot_type("text", from_opening=False)
def text(turn: Turn) -> Any:
    return turn.text.strip() or None
