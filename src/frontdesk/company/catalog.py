"""The store's catalog: product names and the option values their variants come in.

Built from the ``products`` part of a store's ``db.json`` (``Catalog.from_db_json``) or from a
small ``{product name: {option name: values}}`` mapping (``Catalog.from_products``). It is an
immutable, hashable value: entity extraction (``frontdesk.pipeline.entities``) caches its lookup
tables per catalog.

Option names are lower-cased, so ``RAM`` and ``ram`` are one option; product names and option
values keep the catalog's spelling (``T-Shirt``, ``M``, ``1000ml``), which is the spelling
extraction normalises to.

The module also says which spellings stand for the same catalog word: ``words`` and
``word_key`` ignore case, spacing and hyphens ("t shirts", "tshirt", "T-Shirt") and a plural on
the last word; ``quantity`` reads "1 litre", "1L" and "1000ml" as one amount; ``corrections``
lists the catalog words a typo may stand for; ``PRODUCT_SYNONYMS`` and ``OPTION_SYNONYMS`` are
the built-in synonyms. ``frontdesk.pipeline.entities`` decides where in a message they count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any


class CatalogError(ValueError):
    """The catalog file is missing, not JSON, or not shaped like a store's ``db.json``."""


@dataclass(frozen=True, slots=True)
class Product:
    """One product and, per option name, the values its variants come in."""

    name: str
    options: tuple[tuple[str, frozenset[str]], ...]
    product_id: str = ""

    def values(self, option: str) -> frozenset[str]:
        """The values of ``option`` (any case) this product comes in; empty if none."""
        wanted = option.strip().lower()
        for name, values in self.options:
            if name == wanted:
                return values
        return frozenset()

    def offers(self, option: str, value: str) -> bool:
        return value in self.values(option)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Products in catalog order; see the module docstring."""

    products: tuple[Product, ...]

    @classmethod
    def from_products(cls, products: Mapping[str, Mapping[str, Iterable[str]]]) -> Catalog:
        """A catalog from ``{"T-Shirt": {"color": ["blue", "black"], "size": ["S", "M"]}}``."""
        return cls(
            tuple(Product(name.strip(), _freeze(options)) for name, options in products.items())
        )

    @classmethod
    def from_db_products(cls, products: Mapping[str, Any]) -> Catalog:
        """A catalog from the ``products`` object of a store's ``db.json``."""
        built: list[Product] = []
        for key, raw in products.items():
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise CatalogError(f"products.{key}: expected an object with a 'name'")
            variants = raw.get("variants", {})
            if not isinstance(variants, Mapping):
                raise CatalogError(f"products.{key}.variants: expected an object")
            options: dict[str, set[str]] = {}
            for item_id, variant in variants.items():
                found = variant.get("options", {}) if isinstance(variant, Mapping) else None
                if not isinstance(found, Mapping):
                    raise CatalogError(f"products.{key}.variants.{item_id}: no 'options' object")
                for option, value in found.items():
                    options.setdefault(str(option), set()).add(str(value))
            product_id = str(raw.get("product_id", key))
            built.append(Product(raw["name"].strip(), _freeze(options), product_id))
        return cls(tuple(built))

    @classmethod
    def from_db_json(cls, path: Path | str) -> Catalog:
        """Read a store's ``db.json``; only its ``products`` are used."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise CatalogError(f"{path}: cannot be read ({error.strerror})") from error
        except json.JSONDecodeError as error:
            raise CatalogError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from error
        if not isinstance(data, Mapping) or not isinstance(data.get("products"), Mapping):
            raise CatalogError(f"{path}: no 'products' object")
        return cls.from_db_products(data["products"])

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(product.name for product in self.products)

    @property
    def option_names(self) -> tuple[str, ...]:
        """Every option name, sorted."""
        return tuple(sorted({name for product in self.products for name, _ in product.options}))

    @property
    def options(self) -> dict[str, frozenset[str]]:
        """Per option name, the values seen across all products (a fresh dict)."""
        merged: dict[str, set[str]] = {}
        for product in self.products:
            for name, values in product.options:
                merged.setdefault(name, set()).update(values)
        return {name: frozenset(merged[name]) for name in sorted(merged)}

    def option_values(self, option: str) -> frozenset[str]:
        """The values of ``option`` (any case) across all products; empty if unknown."""
        return self.options.get(option.strip().lower(), frozenset())

    def product(self, name: str) -> Product | None:
        """The product called ``name`` (any case), or None."""
        wanted = name.strip().casefold()
        return next((p for p in self.products if p.name.casefold() == wanted), None)


def _freeze(options: Mapping[str, Iterable[str]]) -> tuple[tuple[str, frozenset[str]], ...]:
    merged: dict[str, set[str]] = {}
    for name, values in options.items():
        if isinstance(values, str):
            values = (values,)
        cleaned = {value.strip() for value in values if value.strip()}
        merged.setdefault(name.strip().lower(), set()).update(cleaned)
    return tuple((name, frozenset(merged[name])) for name in sorted(merged) if merged[name])


# --- spelling ---------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:\.[0-9]+[A-Za-z]*)?%?")
_UNITS = {
    "ml": ("ml", 1), "milliliter": ("ml", 1), "milliliters": ("ml", 1), "millilitre": ("ml", 1),
    "millilitres": ("ml", 1), "l": ("l", 1000), "liter": ("l", 1000), "liters": ("l", 1000),
    "litre": ("l", 1000), "litres": ("l", 1000), "ltr": ("l", 1000), "inch": ("inch", 1),
    "inches": ("inch", 1), "in": ("inch", 1), '"': ("inch", 1), "ft": ("ft", 1),
    "feet": ("ft", 1), "foot": ("ft", 1), "cup": ("cup", 1), "cups": ("cup", 1),
    "hour": ("hour", 1), "hours": ("hour", 1), "hr": ("hour", 1), "hrs": ("hour", 1),
    "degree": ("degree", 1), "degrees": ("degree", 1), "mah": ("mah", 1), "mm": ("mm", 1),
    "gb": ("gb", 1), "tb": ("tb", 1), "lb": ("lb", 1), "lbs": ("lb", 1), "pound": ("lb", 1),
    "pounds": ("lb", 1), "bar": ("bar", 1),
}  # fmt: skip
_UNIT_ALTERNATIVES = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
QUANTITY_RE = re.compile(
    rf"(?<![\w.])(\d+(?:\.\d+)?)(\s*-?\s*)({_UNIT_ALTERNATIVES})(?![\w%])", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Quantity:
    """An amount with a unit: ``unit`` as written (canonical), ``amount`` in the base unit."""

    dimension: str  # "volume" (base ml), or the unit itself: "inch", "gb", "hour", ...
    amount: Decimal
    unit: str


def words(text: str) -> list[tuple[int, int, str]]:
    """The words of ``text`` (runs of letters and digits, "1.5L", "60%"), lower-cased."""
    return [(m.start(), m.end(), m.group().lower()) for m in _WORD_RE.finditer(text)]


def singular(word: str) -> str:
    """``word`` without a plural ending ("boots" -> "boot"); short words stay as they are."""
    if len(word) < 4 or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def word_key(parts: Sequence[str]) -> tuple[str, frozenset[int]]:
    """Lower-case words as one key, the last one singular, and the offsets where they split."""
    bounds, offset = set(), 0
    for part in parts[:-1]:
        offset += len(part)
        bounds.add(offset)
    return "".join(parts[:-1]) + singular(parts[-1]), frozenset(bounds)


def quantity(match: re.Match[str]) -> Quantity | None:
    """The quantity a ``QUANTITY_RE`` match names; None for a spaced "in" ("size 10 in blue")."""
    written = match.group(3).lower()
    unit, factor = _UNITS[written]
    if written == "in" and match.group(2):
        return None
    dimension = "volume" if unit in ("ml", "l") else unit
    return Quantity(dimension, Decimal(match.group(1)) * factor, unit)


def parse_quantity(value: str) -> Quantity | None:
    """``value`` as a quantity if it is nothing but one ("1000ml", "1.5 liters", "13-inch")."""
    match = QUANTITY_RE.fullmatch(value.strip())
    return quantity(match) if match else None


def edit_distance(a: str, b: str, limit: int) -> int:
    """Edits from ``a`` to ``b``, a swap of neighbours counting one; ``limit + 1`` if more."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)
            )
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


# Real words one edit away from a catalog word: never taken for typos ("while" is not "white").
_REAL_WORDS = """
    while write table tables class classes grass grasses later layer loser waiter start match
    catch batch patch latch witch right might sight fight tight eight slight flight makes baker
    taker house chain drill block click lover hover dress flesh woman expect export mixed fixes
    smell shall stall quite times timed timber tiger apply ample peace settle leader header
    packet clearer charge charged charges charter blank crown grown drown blown frown medal
    petal mental fetal steal steer steep fellow weather feather heather battle rubbed robber
    fountain grand wordy moody woods puzzled muzzle wider wires short shift skirt shire larger
    barge greek greed greet slack elastic choir clair gloss moose rouse bottled synthesis
    greer greene browne colton marge lange morse helmut
"""
_NOT_TYPOS = frozenset(_REAL_WORDS.split())


@lru_cache(maxsize=16)
def _by_length(vocabulary: frozenset[str]) -> dict[int, tuple[tuple[str, int], ...]]:
    """The vocabulary grouped by word length, each word with its singular's length."""
    groups: dict[int, list[tuple[str, int]]] = {}
    for candidate in vocabulary:
        groups.setdefault(len(candidate), []).append((candidate, len(singular(candidate))))
    return {length: tuple(sorted(items)) for length, items in groups.items()}


@lru_cache(maxsize=65536)
def corrections(word: str, vocabulary: frozenset[str]) -> tuple[str, ...]:
    """Up to three words of ``vocabulary`` that the lower-case ``word`` may be a typo of.

    One edit is allowed for words of 5+ letters (singular), two for 9+. Known words, short
    words, words with digits and common real words (``_REAL_WORDS``) have no corrections.
    Results are cached: customers' words repeat, and the catalog changes rarely.
    """
    own = singular(word)
    if word in vocabulary or own in vocabulary or word in _NOT_TYPOS or not word.isalpha():
        return ()
    if len(own) < 5:
        return ()
    found = []
    letters = set(word)
    groups = _by_length(vocabulary)
    for length in range(len(word) - 2, len(word) + 3):
        for candidate, candidate_singular in groups.get(length, ()):
            shortest = min(candidate_singular, len(own))
            limit = 2 if shortest >= 9 else 1 if shortest >= 5 else 0
            # One edit changes the set of letters by at most two: a cheap test first.
            if (
                limit
                and len(letters ^ set(candidate)) <= 2 * limit
                and (edit_distance(word, candidate, limit) <= limit)
            ):
                found.append(candidate)
    return tuple(sorted(found)[:3])


PRODUCT_SYNONYMS = {
    "tee": "T-Shirt", "tee shirt": "T-Shirt", "shirt": "T-Shirt", "boots": "Hiking Boots",
    "hiking shoes": "Hiking Boots", "bottle": "Water Bottle", "speaker": "Bluetooth Speaker",
    "pack": "Backpack", "back pack": "Backpack", "rucksack": "Backpack", "chair": "Office Chair",
    "desk chair": "Office Chair", "bike": "Bicycle", "helmet": "Cycling Helmet",
    "earbuds": "Wireless Earbuds", "headset": "Headphones", "mouse": "Gaming Mouse",
    "keyboard": "Mechanical Keyboard", "lamp": "Desk Lamp", "umbrella": "Patio Umbrella",
    "hose": "Garden Hose", "mat": "Yoga Mat", "thermostat": "Smart Thermostat",
    "purifier": "Air Purifier", "vacuum": "Vacuum Cleaner", "toothbrush": "Electric Toothbrush",
    "charger": "Portable Charger", "power bank": "Portable Charger", "puzzle": "Jigsaw Puzzle",
    "dumbbells": "Dumbbell Set", "suitcase": "Luggage Set", "luggage": "Luggage Set",
    "jacket": "Fleece Jacket", "light bulb": "LED Light Bulb", "bulb": "LED Light Bulb",
    "coffee machine": "Coffee Maker", "espresso maker": "Espresso Machine",
    "bookcase": "Bookshelf", "dog bed": "Pet Bed", "cat bed": "Pet Bed",
    "security camera": "Indoor Security Camera", "sun glasses": "Sunglasses",
    "cell phone": "Smartphone", "mobile phone": "Smartphone", "earphones": "Wireless Earbuds",
    "trainers": "Sneakers",
}  # fmt: skip
"""What customers call a product -> its catalog name; used only where that product exists."""

OPTION_SYNONYMS = (
    ("color", "grey", "gray"), ("color", "gray", "grey"), ("color", "space grey", "space gray"),
    ("size", "S", "small"), ("size", "M", "medium"), ("size", "L", "large"),
    ("size", "XS", "extra small"), ("size", "XS", "x-small"), ("size", "XL", "extra large"),
    ("size", "XL", "x-large"), ("size", "XXL", "xx-large"), ("size", "XXL", "2xl"),
    ("size", "XXL", "extra extra large"),
)  # fmt: skip
"""(option, catalog value, what customers write); used only where that value exists. "navy" is
deliberately not "blue": a catalog may sell both."""


def load_catalog(company_dir: Path | None) -> Catalog | None:
    """The company's catalog from ``data/db.json`` in its folder, if it has one."""
    if company_dir is None:
        return None
    path = company_dir / "data" / "db.json"
    return Catalog.from_db_json(path) if path.exists() else None
