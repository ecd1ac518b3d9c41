"""The store's written policy, as code. Every write goes through one of these functions, so a
rule holds whatever asked for the write (a flow, an LLM's function call, an API client).

Each function takes the current records and the request, checks every rule the policy sets,
and returns the changed records with a result; a broken rule raises ``Refusal`` with a code
and a sentence the customer can read. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from frontdesk.shop.records import (
    Address,
    Item,
    Order,
    PaymentMethod,
    ProductRecord,
    Profile,
    dollars,
)

CANCEL_REASONS = ("no longer needed", "ordered by mistake")

# Which order statuses allow which action (policy: "Generally, you can only take action on
# pending or delivered orders").
ALLOWED_STATUS: dict[str, frozenset[str]] = {
    "cancel": frozenset({"pending"}),
    "modify": frozenset({"pending"}),
    "return": frozenset({"delivered"}),
    "exchange": frozenset({"delivered"}),
}

_STATUS_SAYS = {
    "cancel": "Only pending orders can be cancelled",
    "modify": "Only pending orders can be changed",
    "return": "Only delivered orders can be returned",
    "exchange": "Only delivered orders can be exchanged",
}


class Refusal(Exception):
    """The policy does not allow the request. ``message`` is written for the customer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Outcome:
    order: Order | None
    profile: Profile | None
    result: dict[str, Any] = field(hash=False)
    conversion: dict[str, Any] | None = field(default=None, hash=False)


def check_owner(order: Order | None, customer_id: str, order_id: str) -> Order:
    """The order, if it is the customer's. Another customer's order reads as not found: the
    reply must not even confirm that it exists."""
    if order is None or order.customer_id != customer_id:
        raise Refusal(
            "order_not_found",
            f"I can't find an order {order_id} on your account. I can only help with orders "
            "that belong to you.",
        )
    return order


def check_status(order: Order, action: str) -> None:
    if order.status not in ALLOWED_STATUS[action]:
        raise Refusal(
            f"{action}_not_allowed",
            f"Order {order.id} is {order.status}. {_STATUS_SAYS[action]}.",
        )


def _payment(profile: Profile, method_id: str) -> PaymentMethod:
    method = profile.payment_method(method_id)
    if method is None:
        raise Refusal("unknown_payment_method", "That payment method is not on your account.")
    return method


def _adjust_balance(profile: Profile, method_id: str, delta: Decimal) -> Profile:
    methods = tuple(
        replace(m, balance=(m.balance or Decimal("0.00")) + delta)
        if m.id == method_id and m.source == "gift_card"
        else m
        for m in profile.payment_methods
    )
    return replace(profile, payment_methods=methods)


def _refund(profile: Profile, method_id: str, amount: Decimal) -> tuple[Profile, dict[str, Any]]:
    """A refund entry; a gift card gets its balance back at once."""
    method = profile.payment_method(method_id)
    if method is not None and method.source == "gift_card":
        profile = _adjust_balance(profile, method_id, amount)
    entry = {"transaction_type": "refund", "amount": float(amount), "payment_method_id": method_id}
    return profile, entry


def _settle(
    profile: Profile, method: PaymentMethod, difference: Decimal
) -> tuple[Profile, list[dict[str, Any]]]:
    """Charge (difference > 0) or refund (< 0) the price difference with ``method``."""
    if difference == 0:
        return profile, []
    balance = method.balance or Decimal("0.00")
    if difference > 0 and method.source == "gift_card" and balance < difference:
        raise Refusal(
            "insufficient_balance",
            f"Your gift card balance ({dollars(balance)}) does not cover the difference of "
            f"{dollars(difference)}.",
        )
    if method.source == "gift_card":
        profile = _adjust_balance(profile, method.id, -difference)
    kind = "payment" if difference > 0 else "refund"
    entry = {
        "transaction_type": kind,
        "amount": float(abs(difference)),
        "payment_method_id": method.id,
    }
    return profile, [entry]


def cancel(order: Order, profile: Profile, reason: str) -> Outcome:
    check_status(order, "cancel")
    reason = reason.strip().lower()
    if reason not in CANCEL_REASONS:
        raise Refusal(
            "invalid_reason",
            "An order can be cancelled because it is no longer needed or was ordered by mistake.",
        )
    paid_with = order.paid_with
    payments = list(order.payments)
    if paid_with:
        profile, refund = _refund(profile, paid_with, order.total)
        payments.append(refund)
    changed = replace(
        order,
        status="cancelled",
        payments=tuple(payments),
        details={**order.details, "cancel_reason": reason},
    )
    method = profile.payment_method(paid_with) if paid_with else None
    when = (
        "right away" if method and method.source == "gift_card" else "within 5 to 7 business days"
    )
    return Outcome(
        changed,
        profile,
        {
            "order_id": order.id,
            "status": "cancelled",
            "refund": float(order.total),
            "refund_when": when,
        },
    )


def _matching(order: Order, item_ids: Sequence[str]) -> tuple[list[Item], list[str]]:
    """The order's items for ``item_ids`` (each id takes one item, so an id given twice takes
    two of them), and the ids that matched none."""
    remaining = list(order.items)
    picked: list[Item] = []
    missing: list[str] = []
    for item_id in item_ids:
        found = next((i for i in remaining if i.item_id == item_id), None)
        if found is None:
            missing.append(item_id)
        else:
            remaining.remove(found)
            picked.append(found)
    return picked, missing


def _pick_items(order: Order, item_ids: Sequence[str]) -> list[Item]:
    if not item_ids:
        raise Refusal("no_items", "Please tell me which items this is for.")
    picked, missing = _matching(order, item_ids)
    if missing:
        raise Refusal("item_not_in_order", f"Item {missing[0]} is not in order {order.id}.")
    return picked


def return_items(
    order: Order, profile: Profile, item_ids: Sequence[str], payment_method_id: str
) -> Outcome:
    check_status(order, "return")
    picked = _pick_items(order, item_ids)
    method = _payment(profile, payment_method_id)
    if payment_method_id != order.paid_with and method.source != "gift_card":
        raise Refusal(
            "refund_method_not_allowed",
            "A refund goes to the original payment method or to one of your gift cards.",
        )
    amount = sum((i.price for i in picked), Decimal("0.00"))
    changed = replace(
        order,
        status="return requested",
        details={
            **order.details,
            "return_items": [i.item_id for i in picked],
            "refund_method_id": payment_method_id,
        },
    )
    return Outcome(
        changed,
        profile,
        {
            "order_id": order.id,
            "status": "return requested",
            "items": [i.label() for i in picked],
            "refund": float(amount),
            "refund_to": method.label(),
        },
    )


@dataclass(frozen=True, slots=True)
class Refunds:
    """An order's refunds: those made (its payment history's refund entries, as amount and
    payment method id) and the one a booked return waits for (issued when the items arrive
    at the warehouse)."""

    made: tuple[tuple[Decimal, str], ...]
    awaiting: tuple[Decimal, str, tuple[Item, ...]] | None

    @property
    def any(self) -> bool:
        return bool(self.made) or self.awaiting is not None


def refunds(order: Order) -> Refunds:
    made = tuple(
        (Decimal(str(p["amount"])).quantize(Decimal("0.01")), str(p["payment_method_id"]))
        for p in order.payments
        if p.get("transaction_type") == "refund"
    )
    awaiting = None
    if order.status == "return requested":
        # The items the return named (return_items); an order imported with this status and
        # no such record waits for all of its items.
        named = [str(i) for i in order.details.get("return_items", []) or []]
        picked = _matching(order, named)[0] or list(order.items)
        amount = sum((i.price for i in picked), Decimal("0.00"))
        method = str(order.details.get("refund_method_id") or order.paid_with or "")
        awaiting = (amount, method, tuple(picked))
    return Refunds(made, awaiting)


def _swap(
    order: Order,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    products: Mapping[str, ProductRecord],
) -> tuple[list[Item], list[Item], Decimal]:
    if len(item_ids) != len(new_item_ids):
        raise Refusal("mismatched_items", "Each item needs exactly one new variant.")
    picked = _pick_items(order, item_ids)
    new_items: list[Item] = []
    for old, new_id in zip(picked, new_item_ids, strict=True):
        product = products.get(old.product_id)
        variant = product.variant(new_id) if product else None
        if product is None or variant is None:
            raise Refusal(
                "different_product",
                f"{old.name} can only be swapped for another variant of the same product.",
            )
        if new_id == old.item_id:
            raise Refusal("same_variant", f"That is the variant you already have ({old.label()}).")
        if not variant.available:
            raise Refusal(
                "variant_unavailable",
                f"{product.name} in {variant.label()} is out of stock.",
            )
        new_items.append(
            Item(
                variant.item_id,
                product.product_id,
                product.name,
                variant.price,
                dict(variant.options),
            )
        )
    difference = sum(
        (n.price - o.price for o, n in zip(picked, new_items, strict=True)), Decimal("0.00")
    )
    return picked, new_items, difference


def _swapped(
    changed: Order,
    profile: Profile,
    picked: Sequence[Item],
    new_items: Sequence[Item],
    difference: Decimal,
    method: PaymentMethod,
    kind: str,
) -> Outcome:
    """The outcome of an exchange or an item change, with its conversion event: an
    upgrade when the customer paid more."""
    return Outcome(
        changed,
        profile,
        {
            "order_id": changed.id,
            "status": changed.status,
            "items": [i.label() for i in picked],
            "new_items": [i.label() for i in new_items],
            "price_difference": float(difference),
            "payment_method": method.label(),
        },
        conversion={
            "kind": "upgraded" if difference > 0 else kind,
            "revenue": float(max(difference, Decimal("0.00"))),
            "order_id": changed.id,
        },
    )


def exchange_items(
    order: Order,
    profile: Profile,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    payment_method_id: str,
    products: Mapping[str, ProductRecord],
) -> Outcome:
    check_status(order, "exchange")
    if order.details.get("exchanged"):
        raise Refusal("already_exchanged", f"Order {order.id} has been exchanged once already.")
    picked, new_items, difference = _swap(order, item_ids, new_item_ids, products)
    method = _payment(profile, payment_method_id)
    profile, entries = _settle(profile, method, difference)
    changed = replace(
        order,
        status="exchange requested",
        payments=(*order.payments, *entries),
        details={
            **order.details,
            "exchanged": True,
            "exchange_items": [i.item_id for i in picked],
            "exchange_new_items": [i.item_id for i in new_items],
            "exchange_price_difference": float(difference),
            "exchange_payment_method_id": payment_method_id,
        },
    )
    return _swapped(changed, profile, picked, new_items, difference, method, "exchanged")


def modify_items(
    order: Order,
    profile: Profile,
    item_ids: Sequence[str],
    new_item_ids: Sequence[str],
    payment_method_id: str,
    products: Mapping[str, ProductRecord],
) -> Outcome:
    check_status(order, "modify")
    picked, new_items, difference = _swap(order, item_ids, new_item_ids, products)
    method = _payment(profile, payment_method_id)
    profile, entries = _settle(profile, method, difference)
    items = list(order.items)
    for old, new in zip(picked, new_items, strict=True):
        items[items.index(old)] = new
    changed = replace(
        order,
        status="pending (item modified)",
        items=tuple(items),
        payments=(*order.payments, *entries),
    )
    return _swapped(changed, profile, picked, new_items, difference, method, "modified")


def modify_address(order: Order, profile: Profile, address: Address) -> Outcome:
    check_status(order, "modify")
    changed = replace(order, address=address)
    return Outcome(changed, profile, {"order_id": order.id, "address": address.text()})


def modify_payment(order: Order, profile: Profile, payment_method_id: str) -> Outcome:
    check_status(order, "modify")
    method = _payment(profile, payment_method_id)
    original = order.paid_with
    if payment_method_id == original:
        raise Refusal("same_payment_method", "The order is already paid with that method.")
    if method.source == "gift_card" and (method.balance or Decimal("0.00")) < order.total:
        raise Refusal(
            "insufficient_balance",
            f"Your gift card balance does not cover the order total of {dollars(order.total)}.",
        )
    entries: list[dict[str, Any]] = [
        {
            "transaction_type": "payment",
            "amount": float(order.total),
            "payment_method_id": method.id,
        }
    ]
    if method.source == "gift_card":
        profile = _adjust_balance(profile, method.id, -order.total)
    if original:
        profile, refund = _refund(profile, original, order.total)
        entries.append(refund)
    changed = replace(order, payments=(*order.payments, *entries))
    return Outcome(changed, profile, {"order_id": order.id, "payment_method": method.label()})


def change_default_address(profile: Profile, address: Address) -> Outcome:
    changed = replace(profile, address=address)
    return Outcome(None, changed, {"address": address.text()})
