"""The store below the flows: the policy as code, the tool gate, tool schemas, flow files, and
what the database keeps (sealed profiles, keyed ids, the vault)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import DEMO, open_conversation, say

from frontdesk.adapters.crypto import Sealer, SealError
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.tables import PseudonymRow, ShopActionRow
from frontdesk.flows import tools
from frontdesk.flows.definition import FlowError, load_flows, parse_flow
from frontdesk.flows.slots import SLOT_TYPES, Turn, asks_to_buy
from frontdesk.service import Frontdesk
from frontdesk.shop import policy
from frontdesk.shop.records import Address, Item, Order, PaymentMethod, ProductRecord, Profile
from frontdesk.shop.search import alternatives, quantity_options

# --- policy as code --------------------------------------------------------------------------


def _profile(balance: str = "10.00") -> Profile:
    return Profile(
        "c_1",
        "Ann",
        "Lee",
        "ann@example.com",
        Address("1 A St", "", "Town", "CA", "90001"),
        (
            PaymentMethod("gift_card_1", "gift_card", balance=Decimal(balance)),
            PaymentMethod("credit_card_1", "credit_card", brand="visa", last_four="4242"),
        ),
    )


def _order(status: str) -> Order:
    item = Item("111", "p1", "Hiking Boots", Decimal("100.00"), {"size": "8"})
    return Order(
        "#W0000001",
        "c_1",
        status,
        (item,),
        (),
        ({"transaction_type": "payment", "amount": 100.0, "payment_method_id": "credit_card_1"},),
        Address("1 A St", "", "Town", "CA", "90001"),
        {},
    )


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("cancel", "pending"),
        ("modify", "pending"),
        ("return", "delivered"),
        ("exchange", "delivered"),
    ],
)
def test_that_each_action_runs_only_in_the_statuses_the_policy_allows(
    action: str, allowed: str
) -> None:
    for status in ("pending", "processed", "delivered", "cancelled", "return requested"):
        if status == allowed:
            policy.check_status(_order(status), action)
        else:
            with pytest.raises(policy.Refusal) as refused:
                policy.check_status(_order(status), action)
            assert refused.value.code == f"{action}_not_allowed"


def test_that_only_the_two_cancel_reasons_are_accepted() -> None:
    with pytest.raises(policy.Refusal, match="no longer needed or was ordered by mistake"):
        policy.cancel(_order("pending"), _profile(), "found it cheaper")
    done = policy.cancel(_order("pending"), _profile(), "No longer needed")
    assert done.order is not None and done.order.status == "cancelled"
    assert done.result["refund_when"] == "within 5 to 7 business days"


def test_that_a_refund_goes_only_to_the_original_method_or_a_gift_card() -> None:
    order, profile = _order("delivered"), _profile()
    assert policy.return_items(order, profile, ["111"], "credit_card_1").order is not None
    assert policy.return_items(order, profile, ["111"], "gift_card_1").order is not None
    with_paypal = replace(
        profile, payment_methods=(*profile.payment_methods, PaymentMethod("paypal_1", "paypal"))
    )
    with pytest.raises(policy.Refusal) as refused:
        policy.return_items(order, with_paypal, ["111"], "paypal_1")
    assert refused.value.code == "refund_method_not_allowed"
    with pytest.raises(policy.Refusal, match="not on your account"):
        policy.return_items(order, profile, ["111"], "paypal_9")


def test_that_an_orders_refunds_are_the_ones_made_and_the_one_a_return_waits_for() -> None:
    pending = _order("pending")
    assert not policy.refunds(pending).any
    cancelled = policy.cancel(pending, _profile(), "ordered by mistake").order
    assert cancelled is not None
    found = policy.refunds(cancelled)
    assert found.made == ((Decimal("100.00"), "credit_card_1"),) and found.awaiting is None
    two = replace(
        _order("delivered"),
        items=(
            Item("111", "p1", "Hiking Boots", Decimal("100.00"), {"size": "8"}),
            Item("111", "p1", "Hiking Boots", Decimal("100.00"), {"size": "8"}),
            Item("222", "p2", "Tent", Decimal("50.50"), {}),
        ),
    )
    returned = policy.return_items(two, _profile(), ["111", "111"], "gift_card_1").order
    assert returned is not None
    awaiting = policy.refunds(returned).awaiting
    assert awaiting is not None
    amount, method, items = awaiting
    assert (amount, method, [i.name for i in items]) == (
        Decimal("200.00"),
        "gift_card_1",
        ["Hiking Boots", "Hiking Boots"],
    )
    # An order imported as "return requested" without the record of its items: all of them,
    # to the original payment method (a refusal here made the read tools fail).
    imported = policy.refunds(replace(_order("return requested"), details={}))
    assert imported.awaiting is not None
    assert imported.awaiting[:2] == (Decimal("100.00"), "credit_card_1")


def test_that_a_gift_card_must_cover_a_price_difference() -> None:
    from frontdesk.shop.records import ProductRecord, Variant

    boots = ProductRecord(
        "p1",
        "Hiking Boots",
        (
            Variant("111", {"size": "8"}, True, Decimal("100.00")),
            Variant("222", {"size": "9"}, True, Decimal("150.00")),
            Variant("333", {"size": "10"}, False, Decimal("90.00")),
        ),
    )
    order = _order("delivered")
    with pytest.raises(policy.Refusal) as refused:
        policy.exchange_items(
            order, _profile("10.00"), ["111"], ["222"], "gift_card_1", {"p1": boots}
        )
    assert refused.value.code == "insufficient_balance"
    with pytest.raises(policy.Refusal) as unavailable:
        policy.exchange_items(order, _profile(), ["111"], ["333"], "credit_card_1", {"p1": boots})
    assert unavailable.value.code == "variant_unavailable"
    done = policy.exchange_items(
        order, _profile("80.00"), ["111"], ["222"], "gift_card_1", {"p1": boots}
    )
    assert done.conversion == {"kind": "upgraded", "revenue": 50.0, "order_id": "#W0000001"}
    assert done.profile is not None
    assert done.profile.payment_methods[0].balance == Decimal("30.00")


# --- the tool gate -------------------------------------------------------------------------


async def test_that_the_tool_gate_refuses_unverified_and_unconfirmed_calls(
    frontdesk: Frontdesk,
) -> None:
    from frontdesk.actions.shop import ShopBackend

    backend = ShopBackend(frontdesk)
    raj = shop_repo.customer_key(frontdesk.secret, "raj_sanchez_2970")
    args = {"order_id": "#W4566809", "reason": "no longer needed"}
    with pytest.raises(tools.ToolRefused) as refused:
        await tools.run_tool(
            backend, tools.ToolContext("conv-1"), "get_order_details", {"order_id": "#W4566809"}
        )
    assert refused.value.code == "not_authenticated"
    with pytest.raises(tools.ToolRefused) as refused:
        await tools.run_tool(
            backend, tools.ToolContext("conv-1", raj), "cancel_pending_order", args
        )
    assert refused.value.code == "not_confirmed"
    with pytest.raises(tools.ToolRefused) as refused:
        await tools.run_tool(
            backend,
            tools.ToolContext("conv-1", raj),
            "cancel_pending_order",
            {"order_id": "W1", "reason": 3},
        )
    assert refused.value.code == "invalid_arguments" and "order_id" in refused.value.message
    key = tools.action_key(
        "conv-1", "cancel_pending_order", tools.parse_args("cancel_pending_order", args)
    )
    first = await tools.run_tool(
        backend, tools.ToolContext("conv-1", raj, confirmed=key), "cancel_pending_order", args
    )
    second = await tools.run_tool(
        backend, tools.ToolContext("conv-1", raj, confirmed=key), "cancel_pending_order", args
    )
    assert first["status"] == "cancelled" and second == {**first, "repeated": True}
    count = await frontdesk.db.run(
        lambda s: s.execute(select(func.count()).select_from(ShopActionRow)).scalar()
    )
    assert count == 1


async def test_that_products_are_compared_from_the_catalog_and_bad_names_are_refused(
    frontdesk: Frontdesk,
) -> None:
    from frontdesk.actions.shop import ShopBackend

    backend, ctx = ShopBackend(frontdesk), tools.ToolContext("conv-1")
    both = {"products": ["Tablet", "e-reader"]}
    compared = await tools.run_tool(backend, ctx, "compare_products", both)
    assert [p["product"] for p in compared["products"]] == ["Tablet", "E-Reader"]
    assert (
        compared["text"].splitlines()[0].startswith("- Tablet: 7 of 14 variants in stock, $903.95")
    )
    with pytest.raises(tools.ToolRefused) as refused:
        await tools.run_tool(backend, ctx, "compare_products", {"products": ["Tablet", "Tent"]})
    assert refused.value.code == "unknown_product" and "Tent" in refused.value.message
    with pytest.raises(tools.ToolRefused) as refused:
        await tools.run_tool(backend, ctx, "compare_products", {"products": ["Tablet"]})
    assert refused.value.code == "invalid_arguments"


def test_that_every_tool_has_a_function_calling_schema() -> None:
    schemas = tools.schemas()
    names = [s["function"]["name"] for s in schemas]
    assert names == sorted(tools.TOOLS) and len(names) >= 15
    for schema in schemas:
        assert schema["type"] == "function"
        assert schema["function"]["description"]
        assert schema["function"]["parameters"]["type"] == "object"
    cancel = next(s for s in schemas if s["function"]["name"] == "cancel_pending_order")
    assert set(cancel["function"]["parameters"]["required"]) == {"order_id", "reason"}
    writes = {t.name for t in tools.TOOLS.values() if t.writes}
    assert "cancel_pending_order" in writes and "get_order_details" not in writes


# --- flow files ----------------------------------------------------------------------------


def test_that_the_demo_flows_load() -> None:
    flows = load_flows(DEMO)
    assert {
        "authenticate",
        "order_status",
        "cancel_order",
        "return_item",
        "exchange_item",
        "modify_order",
        "change_default_address",
        "product_search",
        "lead_capture",
        "refund_status",
        "account_change",
        "add_or_remove_items",
    } <= set(flows.by_name)


def test_that_an_entity_trigger_needs_its_entities_and_its_pattern_together() -> None:
    flow = parse_flow(
        "name: x\ndescription: d\ntriggers:\n  with_entities:\n"
        "    - {entities: [product, amount], pattern: '\\bunder\\b'}\n"
        "steps:\n  - say: hi\n",
        "flows/x.yaml",
    )
    assert flow.matches("laptop under 2000", {"product", "amount"})
    assert not flow.matches("laptop under 2000", {"product"})  # no price read
    assert not flow.matches("I paid $344 for the laptop", {"product", "amount"})
    assert not flow.matches("under 5 days")


def test_that_an_unless_pattern_keeps_a_message_from_starting_the_flow() -> None:
    flow = parse_flow(
        "name: x\ndescription: d\ntriggers:\n  intents: [account_info]\n"
        "  unless: ['\\bchange\\b']\nsteps:\n  - say: hi\n",
        "flows/x.yaml",
    )
    assert flow.excludes("can I change my email?")
    assert not flow.excludes("what email is on my account?")


def _demo_products() -> list[ProductRecord]:
    raw = json.loads((DEMO / "data" / "db.json").read_text(encoding="utf-8"))
    return [
        ProductRecord.from_dict(k, v["name"], v["variants"]) for k, v in raw["products"].items()
    ]


def test_that_a_bare_quantity_is_the_products_own_option_value() -> None:
    products = {p.name: p for p in _demo_products()}
    speaker, kettle = products["Bluetooth Speaker"], products["Tea Kettle"]
    assert quantity_options("20 hours", speaker) == {"battery life": "20 hours"}
    assert quantity_options("2 litres please", kettle) == {"capacity": "2 liters"}
    assert quantity_options("2000ml", kettle) == {"capacity": "2 liters"}
    assert quantity_options("15 hours", speaker) == {}  # not a value the speaker has
    assert quantity_options("20 hours", kettle) == {}


def test_that_alternatives_have_what_the_customer_asked_for_first() -> None:
    bed = next(p for p in _demo_products() if p.name == "Pet Bed")
    had = {"size": "large", "material": "memory foam", "color": "brown"}
    wanted = {**had, "material": "fleece"}
    plain = alternatives(bed, wanted)
    asked = alternatives(bed, wanted, asked={"material": "fleece"})
    assert plain[0].options["material"] != "fleece"  # two shared values beat the one asked for
    assert [v.options["material"] for v in asked[:2]] == ["fleece", "fleece"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("what do you sell?", "range"),
        ("what kind of products do you have", "range"),
        ("do you sell tents?", "tents"),
        ("have you got any kayaks", "kayaks"),
        ("I'm looking for a sleeping bag for camping", "sleeping bag"),
        ("do you have anything for camping?", None),
        ("do you have a store near me", None),
        ("do you have any deals", None),
        ("I'm looking for your returns policy", None),
        ("hello", None),
    ],
)
def test_that_a_request_for_goods_the_store_lacks_gets_the_range(
    message: str, expected: str | None
) -> None:
    products = _demo_products()
    query = SLOT_TYPES["product_query"].extract(Turn(text=message, products=products))
    if expected is None:
        assert query is None
        return
    assert query is not None and query["product"] is None
    assert query["range"].startswith("Action Camera, Air Purifier, Backpack")
    assert query.get("missing") == (None if expected == "range" else expected)
    assert query.get("asked_range", False) is (expected == "range")


@pytest.mark.parametrize(
    ("message", "thing"),
    [
        ("I want to buy a sleeping bag", "sleeping bag"),
        ("do you sell sleeping bags?", "sleeping bags"),
        ("I'm shopping for a tent", "tent"),
        ("do you carry kayaks", "kayaks"),
        # Not goods, or not only goods: the help centre may well answer these.
        ("I want to buy a gift card", None),
        ("do you have a size guide?", None),
        ("I'm looking for my order number", None),
        ("have you got any kayaks", None),
        ("I want to buy something nice", None),
    ],
)
def test_that_a_request_to_buy_names_the_goods(message: str, thing: str | None) -> None:
    assert asks_to_buy(message) == thing


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: x\ndescription: d\nsteps:\n  - say: hi\n    end: bye\n", "exactly one of"),
        ("name: x\ndescription: d\nsteps:\n  - call: launch_rocket\n", "no tool 'launch_rocket'"),
        ("name: x\ndescription: d\nsteps:\n  - goto: nowhere\n", "no step with id 'nowhere'"),
        (
            "name: x\ndescription: d\nsteps:\n  - collect: a\n    type: zodiac\n    prompt: p\n",
            "no slot type 'zodiac'",
        ),
        (
            "name: x\ndescription: d\ntriggers: {patterns: ['(']}\nsteps:\n  - say: hi\n",
            "not a regular expression",
        ),
        (
            "name: x\ndescription: d\ntriggers:\n  with_entities: [{entities: [product], "
            "pattern: '(under'}]\nsteps:\n  - say: hi\n",
            "not a regular expression",
        ),
        (
            "name: x\ndescription: d\ntriggers:\n  with_entities: [{entities: [], pattern: x}]\n"
            "steps:\n  - say: hi\n",
            "at least 1 item",
        ),
        (
            "name: x\ndescription: d\ntriggers: {unless: ['[a-']}\nsteps:\n  - say: hi\n",
            "not a regular expression",
        ),
        ("name: x\ndescription: d\nsteps:\n  - collect: a\n", "needs a prompt"),
        ("name: x\n  bad: [\n", "not valid YAML"),
    ],
)
def test_that_a_flow_file_mistake_is_named(text: str, problem: str) -> None:
    with pytest.raises(FlowError) as error:
        parse_flow(text, "flows/x.yaml")
    assert "flows/x.yaml" in str(error.value) and problem in str(error.value)


def test_that_a_flow_after_an_unknown_flow_is_named(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "x.yaml").write_text(
        "name: x\ndescription: d\ntriggers: {after: [ghost]}\nsteps:\n  - say: hi\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match="flow 'x' comes after 'ghost'"):
        load_flows(tmp_path)


def test_that_flows_needing_verification_need_an_authenticate_flow(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text(
        "name: a\ndescription: d\nrequires_auth: true\nsteps:\n  - say: hi\n"
    )
    with pytest.raises(FlowError, match="authenticate"):
        load_flows(tmp_path)


# --- what the database keeps -----------------------------------------------------------------


def test_that_a_sealed_value_does_not_open_under_another_label_or_when_tampered() -> None:
    sealer = Sealer(b"k")
    sealed = sealer.seal("ann@example.com", "vault")
    assert sealer.open(sealed, "vault") == "ann@example.com"
    with pytest.raises(SealError):
        sealer.open(sealed, "leads.contact")
    with pytest.raises(SealError):
        sealer.open(sealed[:-4] + "AAAA", "vault")
    with pytest.raises(SealError, match="does not hold"):
        Sealer(b"other").open(sealed, "vault")


async def test_that_the_store_data_is_kept_without_clear_personal_data(
    frontdesk: Frontdesk, settings: Any, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("reads the SQLite file itself")
    await frontdesk.close()
    raw = Path(settings.resolved_database_url.split("///", 1)[1]).read_bytes()
    for clear in (
        b"raj.sanchez2046@example.com",
        b"986 Sunset Drive",
        b"raj_sanchez_2970",
        b"Sanchez",
    ):
        assert clear not in raw
    assert b"Hiking Boots" in raw  # products are not personal data


async def test_that_an_email_in_a_message_is_a_token_with_its_value_in_the_vault(
    client: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(client)
    result = await say(client, cid, "my email is ann@example.com")
    assert result["message"]["text"] == "my email is ann@example.com"  # restored for its customer
    [stored] = await frontdesk.db.run(lambda s: repo.messages_after(s, cid, 0)[:1])
    assert stored.text == "my email is <EMAIL_1>"
    [row] = await frontdesk.db.run(lambda s: list(s.execute(select(PseudonymRow)).scalars()))
    assert row.sealed is not None and b"ann@" not in row.sealed.encode()
    assert frontdesk.sealer.open(row.sealed, "vault") == "ann@example.com"


async def test_that_an_intent_starts_a_flow_without_any_pattern(
    smart_client: httpx.AsyncClient,
) -> None:
    cid = await open_conversation(smart_client)
    result = await say(
        smart_client, cid, "the grill I got is not what I wanted, I want my money back"
    )
    text = result["replies"][0]["text"]
    assert "email address" in text  # the return flow asks to verify first


def test_that_a_payment_change_refunds_the_original_and_draws_the_gift_card() -> None:
    done = policy.modify_payment(_order("pending"), _profile("150.00"), "gift_card_1")
    assert done.order is not None and done.profile is not None
    assert [p["transaction_type"] for p in done.order.payments] == ["payment", "payment", "refund"]
    assert done.order.payments[-1]["payment_method_id"] == "credit_card_1"
    assert done.profile.payment_methods[0].balance == Decimal("50.00")
    with pytest.raises(policy.Refusal) as same:
        policy.modify_payment(_order("pending"), _profile(), "credit_card_1")
    assert same.value.code == "same_payment_method"


async def test_that_a_changed_secret_key_stops_the_start_with_a_clear_error(
    settings: Any, shared_embedder: Any
) -> None:
    other = settings.model_copy(update={"secret_key": "another-secret"})
    fd = Frontdesk(other, embedder=shared_embedder)
    with pytest.raises(shop_repo.StoreDataError, match="the secret key changed"):
        await fd.start(load_knowledge=False)
    await fd.close()
