"""Catalog search and recommendations over the store's products.

``search`` ranks in-stock variants by how many of the wanted options they have, then by price;
a variant over the budget is never offered. ``alternatives`` finds the in-stock variants of a
product closest to one that is unavailable. ``compare`` lines variants up option by option.
All of it is pure and reads only what the catalog says (no opinions: the policy forbids them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from frontdesk.company.catalog import QUANTITY_RE, parse_quantity, quantity
from frontdesk.shop.records import ProductRecord, Variant, dollars, options_text


@dataclass(frozen=True, slots=True)
class Match:
    product: ProductRecord
    variant: Variant
    matched: int  # how many wanted options it has

    def label(self) -> str:
        return f"{self.product.name} ({self.variant.label()}) at {dollars(self.variant.price)}"


def boolean_options(text: str, product: ProductRecord) -> dict[str, str]:
    """Yes/no options named as adjectives: "waterproof boots" -> waterproof=yes, "not
    waterproof" or "non-waterproof" -> waterproof=no."""
    found: dict[str, str] = {}
    lowered = text.lower()
    for name in {n for v in product.variants for n in v.options}:
        values = {v.options.get(name) for v in product.variants}
        if not values <= {"yes", "no", None}:
            continue
        pattern = re.escape(name.lower()).replace(r"\ ", r"[\s-]?")
        hit = re.search(rf"(?:\b(not|non)[\s-]?)?\b{pattern}\b", lowered)
        if hit:
            found[name] = "no" if hit.group(1) else "yes"
    return found


def quantity_options(text: str, product: ProductRecord) -> dict[str, str]:
    """Option values of ``product`` that a quantity in ``text`` names, in the catalog's
    spelling: "20 hours" -> battery life=20 hours, "2 litres" -> capacity=2 liters. Only where
    one option of the product has that quantity."""
    values: dict[tuple[str, Decimal], set[tuple[str, str]]] = {}
    for variant in product.variants:
        for name, value in variant.options.items():
            amount = parse_quantity(value)
            if amount is not None:
                values.setdefault((amount.dimension, amount.amount), set()).add((name, value))
    found: dict[str, str] = {}
    for match in QUANTITY_RE.finditer(text):
        amount = quantity(match)
        named = values.get((amount.dimension, amount.amount), set()) if amount else set()
        if len({name for name, _ in named}) == 1:
            name, value = sorted(named)[0]
            found.setdefault(name, value)
    return found


def search(
    products: Iterable[ProductRecord],
    *,
    product: str | None = None,
    options: Mapping[str, str] | None = None,
    max_price: Decimal | None = None,
    limit: int = 3,
) -> list[Match]:
    """In-stock variants, best first: the named product (or any), the wanted options, the
    budget. Options a product does not have are ignored for it."""
    wanted = {k.lower(): v for k, v in (options or {}).items()}
    found: list[Match] = []
    for record in products:
        if product and record.name.lower() != product.lower():
            continue
        for variant in record.in_stock():
            if max_price is not None and variant.price > max_price:
                continue
            relevant = {k: v for k, v in wanted.items() if k in variant.options}
            if product is None and wanted and not relevant:
                continue
            matched = sum(1 for k, v in relevant.items() if variant.options[k].lower() == v.lower())
            if relevant and matched < len(relevant) and product is None:
                continue
            found.append(Match(record, variant, matched))
    found.sort(key=lambda m: (-m.matched, m.variant.price, m.variant.item_id))
    exact = [m for m in found if m.matched == max((x.matched for x in found), default=0)]
    return (exact or found)[:limit]


def shared_options(variant: Variant, values: Mapping[str, str]) -> int:
    """How many of ``values`` (option name -> value, any case) the variant has."""
    return sum(
        1 for k, x in values.items() if variant.options.get(k.lower(), "").lower() == x.lower()
    )


def has_options(variant: Variant, values: Mapping[str, str]) -> bool:
    """Whether the variant has all of ``values`` (option name -> value, any case)."""
    return shared_options(variant, values) == len(values)


def find_variant(record: ProductRecord, options: Mapping[str, str]) -> Variant | None:
    """The variant with exactly these values for the named options (others may differ);
    in stock first, then cheapest."""
    hits = [v for v in record.variants if has_options(v, options)]
    hits.sort(key=lambda v: (not v.available, v.price))
    return hits[0] if hits else None


def closest_variant(
    record: ProductRecord, base: Mapping[str, str], changes: Mapping[str, str]
) -> Variant | None:
    """The variant with ``changes`` applied to ``base`` that keeps most of the other options:
    "the same boots in size 10" keeps material and waterproofing where such a variant exists,
    even out of stock (the caller then offers in-stock alternatives rather than swapping the
    material behind the customer's back)."""
    wanted = {k.lower(): v.lower() for k, v in changes.items()}
    candidates = [v for v in record.variants if has_options(v, wanted)]
    if not candidates:
        return None

    def kept(v: Variant) -> int:
        return sum(1 for k, value in base.items() if k not in wanted and v.options.get(k) == value)

    candidates.sort(key=lambda v: (-kept(v), not v.available, v.price))
    return candidates[0]


def alternatives(
    record: ProductRecord,
    wanted: Mapping[str, str],
    *,
    exclude: Sequence[str] = (),
    limit: int = 3,
    asked: Mapping[str, str] | None = None,
) -> list[Variant]:
    """In-stock variants with the most of the values the customer ``asked`` for (the material
    they want instead), then the most other ``wanted`` values, then the cheapest."""
    pool = [v for v in record.in_stock() if v.item_id not in exclude]
    pool.sort(key=lambda v: (-shared_options(v, asked or {}), -shared_options(v, wanted), v.price))
    return pool[:limit]


def compare(record: ProductRecord, variants: Sequence[Variant]) -> str:
    """One line per variant with the options that differ between them, and the price."""
    if not variants:
        return ""
    names = sorted({n for v in variants for n in v.options})
    differing = [n for n in names if len({v.options.get(n) for v in variants}) > 1] or names
    shared = {n: variants[0].options.get(n, "-") for n in names if n not in differing}
    lines = [f"All {options_text(shared)}:"] if shared and len(variants) > 1 else []
    for v in variants:
        shown = {n: v.options.get(n, "-") for n in differing}
        stock = "in stock" if v.available else "out of stock"
        lines.append(f"- {record.name} ({options_text(shown)}): {dollars(v.price)}, {stock}")
    return "\n".join(lines)
