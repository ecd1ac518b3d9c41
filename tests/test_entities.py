"""Entity extraction finds order ids, contact data, zips, amounts, products and options, and
resolves references such as "the second one"; the catalog reads a store's db.json."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from frontdesk.company.catalog import Catalog, CatalogError, corrections, parse_quantity
from frontdesk.pipeline.entities import Entity, extract, resolve_reference

DB_JSON = Path(__file__).resolve().parents[1] / "examples/demo-store/data/db.json"

SHOP = Catalog.from_products({
    "T-Shirt": {"color": ["blue", "black", "red"], "size": ["S", "M", "L", "XL", "XXL"],
                "material": ["cotton", "polyester"], "style": ["crew neck", "v-neck"]},
    "Hiking Boots": {"size": ["8", "9", "10", "11"], "material": ["leather", "synthetic"],
                     "waterproof": ["yes", "no"]},
    "Water Bottle": {"capacity": ["500ml", "750ml", "1000ml"], "color": ["blue", "green"],
                     "material": ["glass", "stainless steel"]},
    "Backpack": {"color": ["black", "grey", "navy"], "size": ["small", "medium", "large"],
                 "compartment": ["laptop", "camera"]},
    "Bluetooth Speaker": {"battery life": ["10 hours", "20 hours"]},
    "Office Chair": {"color": ["black", "gray"], "material": ["leather", "mesh"]},
})  # fmt: skip
SHIRTS_ONLY = Catalog.from_products({"T-Shirt": {"size": ["S", "M", "L", "XL"]}})


def found(text: str, catalog: Catalog | None = SHOP) -> list[tuple[str, str, str]]:
    return [(e.kind, e.value, e.text) for e in extract(text, catalog)]


def values(text: str, kind: str, catalog: Catalog | None = SHOP) -> list[str]:
    return [e.value for e in extract(text, catalog) if e.kind == kind]


# --- the catalog ------------------------------------------------------------------------------


def test_that_the_catalog_lists_product_names_and_option_values_across_products() -> None:
    assert SHOP.product_names[:3] == ("T-Shirt", "Hiking Boots", "Water Bottle")
    assert SHOP.options["color"] == {"blue", "black", "red", "green", "grey", "navy", "gray"}
    assert SHOP.option_values("Material") >= {"cotton", "leather", "glass", "stainless steel"}
    assert SHOP.option_values("no such option") == frozenset()


def test_that_option_names_are_merged_regardless_of_case() -> None:
    catalog = Catalog.from_products({"Laptop": {"ram": ["8GB"]}, "Phone": {"RAM": ["4GB"]}})
    assert catalog.options == {"ram": frozenset({"8GB", "4GB"})}


def test_that_a_product_knows_which_option_values_it_offers() -> None:
    boots = SHOP.product("hiking boots")
    assert boots is not None and boots.offers("size", "10") and not boots.offers("size", "M")
    assert SHOP.product("Kayak") is None


def test_that_equal_catalogs_are_equal_hashable_values() -> None:
    mapping = {"Backpack": {"color": ["black"]}}
    assert Catalog.from_products(mapping) == Catalog.from_products(mapping)
    assert hash(Catalog.from_products(mapping)) == hash(Catalog.from_products(mapping))


def test_that_the_demo_store_db_json_loads_its_products_and_options() -> None:
    catalog = Catalog.from_db_json(DB_JSON)
    assert {"T-Shirt", "Hiking Boots", "Water Bottle"} <= set(catalog.product_names)
    assert {"10", "M", "XL"} <= catalog.option_values("size")
    assert {"500ml", "1000ml"} <= catalog.option_values("capacity")
    boots = catalog.product("Hiking Boots")
    assert boots is not None and boots.offers("size", "10") and boots.product_id


def test_that_a_missing_or_malformed_db_json_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be read"):
        Catalog.from_db_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogError, match="not JSON"):
        Catalog.from_db_json(tmp_path / "bad.json")
    (tmp_path / "users.json").write_text(json.dumps({"users": {}}), encoding="utf-8")
    with pytest.raises(CatalogError, match="no 'products'"):
        Catalog.from_db_json(tmp_path / "users.json")


def test_that_quantities_in_different_units_are_the_same_amount() -> None:
    litre, millilitres = parse_quantity("1.5 liters"), parse_quantity("1500ml")
    assert litre is not None and millilitres is not None
    assert (litre.dimension, litre.amount) == (millilitres.dimension, millilitres.amount)
    assert parse_quantity("crew neck") is None


def test_that_common_real_words_are_never_taken_for_typos() -> None:
    vocabulary = frozenset({"white", "table", "backpack"})
    assert corrections("backpak", vocabulary) == ("backpack",)
    assert corrections("while", vocabulary) == ()
    assert corrections("white", vocabulary) == ()


# --- order ids, contact data, zips, amounts ---------------------------------------------------


@pytest.mark.parametrize("message", [
    "where is #W1234567?", "where is W1234567?", "where is # W1234567?", "where is order#W1234567",
    "where is w1234567",
])  # fmt: skip
def test_that_an_order_id_in_any_form_is_normalised(message: str) -> None:
    assert values(message, "order_id") == ["#W1234567"]


@pytest.mark.parametrize("message", ["W12345678", "#W123456", "order 1234567", "AW1234567"])
def test_that_near_misses_are_not_order_ids(message: str) -> None:
    assert values(message, "order_id") == []


def test_that_pseudonym_tokens_are_entities_whose_value_is_the_token() -> None:
    assert found("mail <EMAIL_1>, call <PHONE_2>, card <CARD_1>") == [
        ("email", "<EMAIL_1>", "<EMAIL_1>"),
        ("phone", "<PHONE_2>", "<PHONE_2>"),
        ("card", "<CARD_1>", "<CARD_1>"),
    ]


def test_that_raw_emails_and_phone_numbers_are_found_and_normalised() -> None:
    assert found("mail Jane.Doe@Example.com or call +1 (415) 555-2671") == [
        ("email", "jane.doe@example.com", "Jane.Doe@Example.com"),
        ("phone", "+14155552671", "+1 (415) 555-2671"),
    ]


@pytest.mark.parametrize(("message", "zip_code"), [
    ("my zip code is 90210", "90210"), ("zip: 90210", "90210"),
    ("postal code 10001-1234", "10001-1234"), ("send it to 12 Main St, Austin, TX 78701", "78701"),
    ("ship to 123 Oak Avenue, Springfield, IL 62704.", "62704"),
    ("new address: 77 Elm Street 30301", "30301"),
])  # fmt: skip
def test_that_a_zip_is_found_after_a_zip_word_or_at_the_end_of_an_address(
    message: str, zip_code: str
) -> None:
    assert values(message, "zip") == [zip_code]


@pytest.mark.parametrize(
    "message", ["I have 12345 points", "order 90210 please", "item 9612497925", "90210"]
)
def test_that_a_bare_five_digit_number_is_not_a_zip(message: str) -> None:
    assert values(message, "zip") == []


@pytest.mark.parametrize(("message", "amount", "typed"), [
    ("it was $45", "45.00", "$45"), ("it was 45 dollars", "45.00", "45 dollars"),
    ("it was 45.99 USD", "45.99", "45.99 USD"), ("anything under $200?", "200.00", "$200"),
    ("I paid $1,299.99", "1299.99", "$1,299.99"), ("I paid $ 12.5", "12.50", "$ 12.5"),
    ("I paid 30$", "30.00", "30$"), ("a budget of $28k max", "28000.00", "$28k"),
    ("about 5k dollars", "5000.00", "5k dollars"), ("$2.5K", "2500.00", "$2.5K"),
])  # fmt: skip
def test_that_money_is_an_amount_with_two_decimals(message: str, amount: str, typed: str) -> None:
    assert found(message, None) == [("amount", amount, typed)]


@pytest.mark.parametrize(
    "message",
    [
        "I want 45 of them", "size 10 please", "it took 3 days", "a 5k run",
        "will it arrive in less than 5 days?", "under 10 hours of battery", "less than 2 kg",
        "is it ok for kids under 12", "under 5-7 business days", "up to 3 items per order",
    ],
)  # fmt: skip
def test_that_a_bare_number_is_not_an_amount(message: str) -> None:
    assert values(message, "amount") == []


@pytest.mark.parametrize(("message", "amount", "typed"), [
    ("laptop under 2000", "2000.00", "2000"), ("my budget is 2500", "2500.00", "2500"),
    ("budget: 300", "300.00", "300"), ("anything below 49.99?", "49.99", "49.99"),
    ("up to 1,500 for a tv", "1500.00", "1,500"), ("no more than 2k please", "2000.00", "2k"),
    ("anything under 300 in black?", "300.00", "300"),
])  # fmt: skip
def test_that_a_bare_number_after_a_price_limit_is_an_amount(
    message: str, amount: str, typed: str
) -> None:
    assert found(message, None) == [("amount", amount, typed)]


# --- products ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "product"), [
    ("do you sell HIKING BOOTS?", "Hiking Boots"), ("I ordered two t-shirts", "T-Shirt"),
    ("I ordered two tshirts", "T-Shirt"), ("I ordered a t shirt", "T-Shirt"),
    ("I ordered a T-Shirt", "T-Shirt"), ("is the hiking boot waterproof", "Hiking Boots"),
    ("two water bottles please", "Water Bottle"),
])  # fmt: skip
def test_that_a_product_is_found_whatever_its_case_spacing_or_plural(
    message: str, product: str
) -> None:
    assert values(message, "product") == [product]


@pytest.mark.parametrize(("message", "product", "typed"), [
    ("my backpak is torn", "Backpack", "backpak"),
    ("the hikign boots leak", "Hiking Boots", "hikign boots"),
    ("a watter bottle", "Water Bottle", "watter bottle"),
    ("a bluetoth speaker", "Bluetooth Speaker", "bluetoth speaker"),
])  # fmt: skip
def test_that_a_typo_in_a_product_name_still_finds_the_product(
    message: str, product: str, typed: str
) -> None:
    assert found(message) == [("product", product, typed)]


@pytest.mark.parametrize(("message", "product"), [
    ("a tee", "T-Shirt"), ("a tee shirt", "T-Shirt"), ("my boots", "Hiking Boots"),
    ("hiking shoes", "Hiking Boots"), ("the bottle leaks", "Water Bottle"),
    ("the speaker is quiet", "Bluetooth Speaker"), ("my rucksack", "Backpack"),
    ("my pack is torn", "Backpack"), ("the chair squeaks", "Office Chair"),
])  # fmt: skip
def test_that_a_synonym_finds_its_product(message: str, product: str) -> None:
    assert values(message, "product") == [product]


def test_that_a_synonym_is_ignored_when_its_product_is_not_in_the_catalog() -> None:
    assert values("my boots are wet", "product", SHIRTS_ONLY) == []


def test_that_a_whole_product_name_wins_over_a_synonym_inside_it() -> None:
    assert found("the bluetooth speaker") == [("product", "Bluetooth Speaker", "bluetooth speaker")]


def test_that_pack_as_a_verb_is_not_a_backpack() -> None:
    assert values("I need to pack my stuff", "product") == []


@pytest.mark.parametrize("word", ["table", "while", "write", "later", "charged", "books"])
def test_that_real_words_close_to_catalog_words_are_not_corrected(word: str) -> None:
    assert extract(f"the {word} is here", Catalog.from_db_json(DB_JSON)) == []


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "option"), [
    ("in BLUE please", "color=blue"), ("the cotton one", "material=cotton"),
    ("is it leathr?", "material=leather"), ("polyestr please", "material=polyester"),
    ("crew neck", "style=crew neck"), ("a v neck", "style=v-neck"),
    ("stainless steel", "material=stainless steel"), ("the 1000ml one", "capacity=1000ml"),
    ("the 500 ml one", "capacity=500ml"), ("a 1l bottle", "capacity=1000ml"),
    ("a 1 liter one", "capacity=1000ml"),
])  # fmt: skip
def test_that_an_option_value_is_found_in_catalog_spelling(message: str, option: str) -> None:
    assert values(message, "option") == [option]


def test_that_a_typo_under_five_letters_is_not_corrected() -> None:
    assert values("in blu", "option") == []


@pytest.mark.parametrize(("message", "size"), [
    ("do you have it in M", "size=M"), ("size m please", "size=M"), ("XL", "size=XL"),
    ("an xxl", "size=XXL"), ("in extra large", "size=XL"), ("an x-large", "size=XL"),
    ("a t-shirt in small", "size=S"), ("a small t-shirt", "size=S"),
    ("the t-shirt, medium size", "size=M"),
])  # fmt: skip
def test_that_sizes_are_found_as_letters_or_words(message: str, size: str) -> None:
    assert values(message, "option") == [size]


def test_that_size_words_map_to_letters_only_when_the_catalog_lacks_the_word() -> None:
    assert values("in large", "option", SHIRTS_ONLY) == ["size=L"]
    assert values("in large", "option") == ["size=large"]
    assert values("a large backpack", "option") == ["size=large"]
    assert values("a large t-shirt", "option") == ["size=L"]


@pytest.mark.parametrize("message", [
    "I am fine", "I'm fine, I'M FINE", "a small problem", "a small problem with my order",
    "I want it large", "it is a medium issue", "I want 10", "can I get 10 boots",
    "my camera broke", "yes", "no thanks", "I waited 10 hours", "U.S. orders only",
])  # fmt: skip
def test_that_plain_sentences_have_no_options(message: str) -> None:
    assert values(message, "option") == []


def test_that_a_number_is_a_size_only_after_the_word_size() -> None:
    assert found("hiking boots in size 10") == [
        ("product", "Hiking Boots", "hiking boots"),
        ("option", "size=10", "10"),
    ]


def test_that_plain_word_options_count_next_to_their_option_name() -> None:
    assert values("a backpack with a laptop compartment", "option") == ["compartment=laptop"]
    assert values("waterproof: yes", "option") == ["waterproof=yes"]
    assert values("10 hours battery life", "option") == ["battery life=10 hours"]


def test_that_grey_and_gray_go_to_the_spelling_the_product_has() -> None:
    assert values("a gray backpack", "option") == ["color=grey"]
    assert values("a grey office chair", "option") == ["color=gray"]
    assert values("in gray", "option") == ["color=gray"]


def test_that_navy_is_not_taken_for_blue() -> None:
    assert values("the navy backpack", "option") == ["color=navy"]
    assert values("in navy", "option", SHIRTS_ONLY) == []


# --- whole messages ---------------------------------------------------------------------------


def test_that_a_message_with_several_entities_yields_them_all_left_to_right() -> None:
    message = "I want to exchange the blue t-shirts in M from order #W1234567"
    assert found(message) == [
        ("option", "color=blue", "blue"),
        ("product", "T-Shirt", "t-shirts"),
        ("option", "size=M", "M"),
        ("order_id", "#W1234567", "#W1234567"),
    ]


def test_that_spans_point_at_the_text_as_typed_and_never_overlap() -> None:
    message = (
        "Swap my Hikign Boots (size 9) for the 750 ml water bottle in green, order # W7654321; "
        "refund $12.50 to <EMAIL_1>, zip code 02139."
    )
    entities = extract(message, SHOP)
    assert [(e.kind, e.value) for e in entities] == [
        ("product", "Hiking Boots"),
        ("option", "size=9"),
        ("option", "capacity=750ml"),
        ("product", "Water Bottle"),
        ("option", "color=green"),
        ("order_id", "#W7654321"),
        ("amount", "12.50"),
        ("email", "<EMAIL_1>"),
        ("zip", "02139"),
    ]
    assert all(message[e.start : e.end] == e.text for e in entities)
    assert all(a.end <= b.start for a, b in pairwise(entities))


def test_that_odd_catalog_values_do_not_break_extraction() -> None:
    catalog = Catalog.from_products({"Thing": {"color": ["—", " ", "blue"]}, "++": {}})
    assert found("a blue thing", catalog) == [
        ("option", "color=blue", "blue"),
        ("product", "Thing", "thing"),
    ]


def test_that_without_a_catalog_only_pattern_entities_are_found() -> None:
    assert found("blue t-shirt, order W1234567", None) == [("order_id", "#W1234567", "W1234567")]


@pytest.mark.parametrize("message", [
    "I am fine", "a small problem", "Can you help me with my order?", "Thanks, that's all for now",
    "I want to send it back while I wait", "is that a table?",
])  # fmt: skip
def test_that_plain_sentences_have_no_entities(message: str) -> None:
    assert extract(message, SHOP) == []


def test_that_entities_are_frozen_records() -> None:
    entity = Entity("product", "Backpack", "backpak", 3, 10)
    with pytest.raises(AttributeError):
        entity.value = "T-Shirt"  # type: ignore[misc]


def test_that_the_real_catalog_finds_a_hiking_boot_in_size_10() -> None:
    catalog = Catalog.from_db_json(DB_JSON)
    entities = extract("do you have the hiking boot in size 10?", catalog)
    assert [(e.kind, e.value) for e in entities] == [
        ("product", "Hiking Boots"),
        ("option", "size=10"),
    ]
    assert values("a 1 liter water bottle", "option", catalog) == ["capacity=1000ml"]
    assert values("a large t-shirt", "option", catalog) == ["size=L"]
    assert values("the 13-inch laptop in space gray", "option", catalog) == [
        "screen size=13-inch",
        "color=space grey",
    ]


# --- references -------------------------------------------------------------------------------

ORDERS = ["#W1111111", "#W2222222", "#W3333333"]


@pytest.mark.parametrize(("message", "chosen"), [
    ("the first one", "#W1111111"), ("the 1st", "#W1111111"),
    ("the second one please", "#W2222222"), ("2nd", "#W2222222"), ("number 2", "#W2222222"),
    ("2", "#W2222222"), ("the third", "#W3333333"), ("the last one", "#W3333333"),
    ("cancel my last order", "#W3333333"), ("the latest", "#W3333333"),
    ("the second to last one", "#W2222222"), ("I mean W2222222", "#W2222222"),
])  # fmt: skip
def test_that_a_reference_picks_the_candidate_in_that_place(message: str, chosen: str) -> None:
    assert resolve_reference(message, ORDERS) == chosen


@pytest.mark.parametrize("message", [
    "the fifth one", "that one", "it", "the other one", "last week I ordered shoes",
    "my first time here", "not the first, the second", "hello",
])  # fmt: skip
def test_that_an_unclear_or_impossible_reference_resolves_to_none(message: str) -> None:
    assert resolve_reference(message, ORDERS) is None


def test_that_that_one_or_it_resolves_only_when_there_is_one_candidate() -> None:
    assert resolve_reference("that one", ["#W1111111"]) == "#W1111111"
    assert resolve_reference("I want to return it", ["#W1111111"]) == "#W1111111"
    assert resolve_reference("this one", ORDERS[:2]) is None
    assert resolve_reference("the first one", []) is None
    assert resolve_reference("that one", ["", "#W1111111"]) is None


def test_that_the_other_one_needs_the_current_candidate_and_two_candidates() -> None:
    assert resolve_reference("the other one", ORDERS[:2], current="#W1111111") == "#W2222222"
    assert resolve_reference("the other one", ORDERS[:2]) is None
    assert resolve_reference("the other one", ORDERS, current="#W1111111") is None
