"""The tools a flow (or an LLM, by function calling) may call, and the one place that runs them.

Each tool is a name, a description, a pydantic model of its arguments and a handler. The same
definitions give the JSON schemas an LLM backend is offered (``schemas()``), so a tool is
described once. ``run_tool`` is the policy gate every call passes, whoever makes it:

* arguments are validated against the tool's model;
* account tools need an authenticated customer, and only ever see that customer's records;
* one customer per conversation: identifying a second customer is refused;
* a write runs only with ``confirmed`` equal to its action key, which the flow engine passes
  after the customer answered an explicit yes to the listed details;
* a write runs at most once per key (``shop_actions``): a repeat returns the first result.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from frontdesk.pipeline import privacy
from frontdesk.shop.records import Address, Order, ProductRecord, dollars, options_text
from frontdesk.shop.search import Match, alternatives, compare, find_variant, search


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(_Args):
    pass


class ListArgs(_Args):
    statuses: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Only the orders with one of these statuses, such as delivered (empty: all).",
    )


class EmailArgs(_Args):
    email: str = Field(description="The customer's email, or its token such as <EMAIL_1>.")


class NameZipArgs(_Args):
    name: str = Field(
        min_length=1,
        max_length=120,
        description="First and last name, or their token such as <PERSON_1>.",
    )
    zip: str = Field(
        pattern=r"^[0-9]{5}$", description="Five-digit zip code of the default address."
    )


class OrderArgs(_Args):
    # Character classes, not \d: llama.cpp turns these patterns into a grammar, and its
    # converter fails on \d (llama-cpp-python 0.3.36's server dies on it).
    order_id: str = Field(pattern=r"^#W[0-9]{7}$", description="Order id such as #W1234567.")


class CheckArgs(OrderArgs):
    action: str = Field(pattern="^(cancel|modify|return|exchange)$")


class CancelArgs(OrderArgs):
    reason: str = Field(description="'no longer needed' or 'ordered by mistake'.")


class AddressArgs(_Args):
    address1: str = Field(min_length=1, max_length=200)
    address2: str = Field(default="", max_length=200)
    city: str = Field(min_length=1, max_length=100)
    state: str = Field(pattern=r"^[A-Z]{2}$")
    zip: str = Field(pattern=r"^[0-9]{5}$")
    country: str = "USA"

    def address(self) -> Address:
        street, unit = self.address1, self.address2
        # A street line typed in chat reaches the tool from the vault with its unit, if any
        # ("12 Main St, Apt 3"): the unit is address2.
        if not unit and (found := _UNIT.search(street)) is not None:
            street, unit = street[: found.start()].rstrip(), found.group(1)
        return Address(street, unit, self.city, self.state, self.zip, self.country)


_UNIT = re.compile(rf",\s*({privacy.UNIT})\s*$")


class OrderAddressArgs(OrderArgs):
    address: AddressArgs


class DefaultAddressArgs(_Args):
    address: AddressArgs


class PaymentArgs(OrderArgs):
    payment_method_id: str = Field(min_length=1, max_length=64)


class ItemsArgs(PaymentArgs):
    item_ids: list[str] = Field(min_length=1, description="Item ids in the order.")


class SwapArgs(ItemsArgs):
    new_item_ids: list[str] = Field(
        min_length=1, description="For each item, the item id of the new variant."
    )


class ProductArgs(_Args):
    product: str = Field(min_length=1, max_length=100, description="Product name.")


class CompareArgs(_Args):
    products: list[str] = Field(
        min_length=2, max_length=4, description="Two to four product names."
    )


class SearchArgs(_Args):
    product: str | None = Field(default=None, max_length=100)
    options: dict[str, str] = Field(default_factory=dict, description="Option name -> value.")
    max_price: Decimal | None = Field(default=None, ge=0)


class LeadArgs(_Args):
    name: str = Field(min_length=1, max_length=120)
    email: str = Field(description="Email or its token such as <EMAIL_1>.")
    interest: str = Field(min_length=1, max_length=300)
    budget: Decimal | None = Field(default=None, ge=0)

    @field_validator("budget", mode="before")
    @classmethod
    def _no_budget(cls, value: Any) -> Any:
        """ "not sure" (or anything that is not a number) is no budget."""
        if isinstance(value, str):
            try:
                return Decimal(value.replace("$", "").replace(",", "").strip())
            except ArithmeticError:
                return None
        return value


class TransferArgs(_Args):
    summary: str = Field(default="", max_length=500)


class ToolRefused(Exception):
    """The call is not allowed or cannot be done. ``message`` is for the customer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class ToolContext:
    """Who is calling: the conversation, the authenticated customer (if any), and the action
    key the customer has confirmed (if any)."""

    conversation_id: str
    customer_id: str | None = None
    confirmed: str | None = None
    effects: dict[str, Any] = field(default_factory=dict)  # e.g. {"authenticated": id}


class Backend(ABC):
    """The port the tools need from the service: reads and the writes. The service's
    adapter is ``frontdesk.actions.shop.ShopBackend``."""

    @abstractmethod
    async def customer_by_email(self, ctx: ToolContext, email: str) -> str | None:
        """The customer with this email (raw, or a token opened from the vault)."""

    @abstractmethod
    async def customer_by_name_zip(self, ctx: ToolContext, name: str, zip_code: str) -> str | None:
        """The customer with this name (first and last, raw or a token opened from the vault)
        and zip, if exactly one."""

    @abstractmethod
    async def profile_view(self, customer_id: str) -> dict[str, Any]:
        """What a flow may show of a profile: payment methods, the city."""

    @abstractmethod
    async def order(self, order_id: str) -> Order | None:
        """The order, whoever it belongs to (the tools check ownership)."""

    @abstractmethod
    async def orders_of(self, customer_id: str) -> list[Order]:
        """The customer's orders."""

    @abstractmethod
    def products(self) -> list[ProductRecord]:
        """The catalog's products."""

    @abstractmethod
    async def write(
        self, ctx: ToolContext, tool: str, key: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run a write once under its key, in one transaction with its events."""

    @abstractmethod
    async def lead(self, ctx: ToolContext, key: str, args: LeadArgs) -> dict[str, Any]:
        """Store a sales lead once under its key."""


Handler = Callable[[Backend, ToolContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    args: type[_Args]
    handler: Handler
    needs_auth: bool = False
    writes: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling description of this tool."""
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }


TOOLS: dict[str, Tool] = {}


def tool(
    name: str,
    description: str,
    args: type[_Args],
    *,
    needs_auth: bool = False,
    writes: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        TOOLS[name] = Tool(name, description, args, handler, needs_auth, writes)
        return handler

    return register


def schemas() -> list[dict[str, Any]]:
    """Every tool as an OpenAI function-calling schema, in a stable order."""
    return [TOOLS[name].schema() for name in sorted(TOOLS)]


def action_key(conversation_id: str, name: str, args: BaseModel) -> str:
    canonical = json.dumps(args.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{conversation_id}|{name}|{canonical}".encode()).hexdigest()


def parse_args(name: str, raw: dict[str, Any]) -> _Args:
    found = TOOLS.get(name)
    if found is None:
        raise ToolRefused("unknown_tool", f"There is no tool called {name!r}.")
    try:
        return found.args.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in error.errors()
        )
        raise ToolRefused("invalid_arguments", f"{name}: {problems}") from error


async def run_tool(
    backend: Backend, ctx: ToolContext, name: str, raw: dict[str, Any]
) -> dict[str, Any]:
    """Run one tool call through the policy gate (see the module docstring)."""
    args = parse_args(name, raw)
    found = TOOLS[name]
    if found.needs_auth and ctx.customer_id is None:
        raise ToolRefused(
            "not_authenticated",
            "I need to verify your identity first: your email, or your name and zip code.",
        )
    if found.writes:
        key = action_key(ctx.conversation_id, name, args)
        if ctx.confirmed != key:
            raise ToolRefused(
                "not_confirmed", "I need your explicit yes to the details before I do that."
            )
    return await found.handler(backend, ctx, args)


# --- the tools -----------------------------------------------------------------------------


def _authenticate(ctx: ToolContext, customer_id: str | None) -> dict[str, Any]:
    if customer_id is None:
        raise ToolRefused(
            "customer_not_found",
            "I couldn't find an account with those details. Please check them and try again.",
        )
    if ctx.customer_id is not None and ctx.customer_id != customer_id:
        raise ToolRefused(
            "one_customer",
            "I can only help one customer per conversation, and this conversation is already "
            "verified for another account.",
        )
    ctx.customer_id = customer_id
    ctx.effects["authenticated"] = customer_id
    return {"customer_id": customer_id}


@tool("find_customer_by_email", "Identify the customer by their email address.", EmailArgs)
async def _find_by_email(backend: Backend, ctx: ToolContext, args: EmailArgs) -> dict[str, Any]:
    return _authenticate(ctx, await backend.customer_by_email(ctx, args.email))


@tool(
    "find_customer_by_name_zip",
    "Identify the customer by first and last name and the zip code of their address.",
    NameZipArgs,
)
async def _find_by_name(backend: Backend, ctx: ToolContext, args: NameZipArgs) -> dict[str, Any]:
    found = await backend.customer_by_name_zip(ctx, args.name, args.zip)
    return _authenticate(ctx, found)


@tool(
    "get_customer_details",
    "The verified customer's payment methods and the city of their default address.",
    NoArgs,
    needs_auth=True,
)
async def _details(backend: Backend, ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    assert ctx.customer_id is not None
    return await backend.profile_view(ctx.customer_id)


def order_view(order: Order) -> dict[str, Any]:
    """What the flows show and keep of an order: no address, no payment details."""
    items = [
        {
            "item_id": i.item_id,
            "product_id": i.product_id,
            "name": i.name,
            "label": i.label(),
            "price": float(i.price),
            "options": dict(i.options),
        }
        for i in order.items
    ]
    tracking = ", ".join(order.tracking)
    return {
        "order_id": order.id,
        "status": order.status,
        "items": items,
        "items_text": "\n".join(f"- {i.label()}: {dollars(i.price)}" for i in order.items),
        "total": float(order.total),
        "total_text": dollars(order.total),
        "tracking": list(order.tracking),
        "tracking_text": f"Tracking number: {tracking}." if tracking else "",
        "paid_with": order.paid_with or "",
    }


async def _own_order(backend: Backend, ctx: ToolContext, order_id: str) -> Order:
    order = await backend.order(order_id)
    if order is None or order.customer_id != ctx.customer_id:
        # Another customer's order reads exactly like a missing one.
        raise ToolRefused(
            "order_not_found",
            f"I can't find an order {order_id} on your account. I can only help with orders "
            "that belong to you.",
        )
    return order


@tool(
    "get_order_details",
    "Status, items and tracking of one of the customer's orders.",
    OrderArgs,
    needs_auth=True,
)
async def _order(backend: Backend, ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
    return order_view(await _own_order(backend, ctx, args.order_id))


@tool("list_orders", "The verified customer's orders with their status.", ListArgs, needs_auth=True)
async def _orders(backend: Backend, ctx: ToolContext, args: ListArgs) -> dict[str, Any]:
    assert ctx.customer_id is not None
    orders = await backend.orders_of(ctx.customer_id)
    wanted = {status.strip().lower() for status in args.statuses}
    return _orders_view([o for o in orders if not wanted or o.status.lower() in wanted])


def _orders_view(orders: list[Order]) -> dict[str, Any]:
    """A list of orders as the flows show it; its ``order_ids`` become the listed orders that
    "the second one" refers to."""
    lines = [
        f"{n}. {o.id}: {o.status}, {', '.join(i.name for i in o.items)}"
        for n, o in enumerate(orders, start=1)
    ]
    return {
        "order_ids": [o.id for o in orders],
        # What each order holds and its status, so that "the earbuds" or "the pending one"
        # can pick the order.
        "order_products": {o.id: sorted({i.name for i in o.items}) for o in orders},
        "order_statuses": {o.id: o.status for o in orders},
        "text": "\n".join(lines),
        "count": len(orders),
    }


@tool(
    "list_refunds",
    "The verified customer's orders with a refund: made, or waiting for returned items.",
    NoArgs,
    needs_auth=True,
)
async def _refund_orders(backend: Backend, ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    from frontdesk.shop.policy import refunds

    assert ctx.customer_id is not None
    orders = await backend.orders_of(ctx.customer_id)
    return _orders_view([o for o in orders if refunds(o).any])


@tool(
    "get_refund_status",
    "The refunds of one of the customer's orders: those made, where they went, and the one a "
    "booked return waits for.",
    OrderArgs,
    needs_auth=True,
)
async def _refund_status(backend: Backend, ctx: ToolContext, args: OrderArgs) -> dict[str, Any]:
    from frontdesk.shop.policy import refunds

    assert ctx.customer_id is not None
    order = await _own_order(backend, ctx, args.order_id)
    found = refunds(order)
    profile = await backend.profile_view(ctx.customer_id)
    methods = {str(m["id"]): m for m in profile["payment_methods"]}

    def to(method_id: str) -> str:
        method = methods.get(method_id)
        return f"your {method['name']}" if method else "the original payment method"

    made = [f"{dollars(amount)} to {to(method)}" for amount, method in found.made]
    view: dict[str, Any] = {
        "order_id": order.id,
        "status": order.status,
        "state": "none",
        "refunds_text": "; ".join(made),
        "awaiting_amount": "",
        "awaiting_to": "",
        "awaiting_items": "",
    }
    destinations = [method for _, method in found.made]
    if found.awaiting is not None:
        amount, method, items = found.awaiting
        view |= {
            "state": "awaiting_return",
            "awaiting_amount": dollars(amount),
            "awaiting_to": to(method),
            "awaiting_items": ", ".join(i.label() for i in items),
        }
        destinations.append(method)
    elif made:
        view["state"] = "refunded"
    gift_only = bool(destinations) and all(
        methods.get(m, {}).get("source") == "gift_card" for m in destinations
    )
    view["timing_text"] = (
        "A refund to a gift card is there at once."
        if gift_only
        else "A refund to a card or PayPal shows within 5–7 business days of being issued, "
        "and your bank may take a little longer. If it isn't there after 7 business days, "
        "please ask your bank first, then ask me for a person from our team."
    )
    return view


@tool(
    "check_order_action",
    "Whether the policy allows an action (cancel, modify, return, exchange) on an order now.",
    CheckArgs,
    needs_auth=True,
)
async def _check(backend: Backend, ctx: ToolContext, args: CheckArgs) -> dict[str, Any]:
    from frontdesk.shop.policy import Refusal, check_status

    order = await _own_order(backend, ctx, args.order_id)
    try:
        check_status(order, args.action)
    except Refusal as refusal:
        raise ToolRefused(refusal.code, refusal.message) from refusal
    return order_view(order)


def _writer(name: str) -> Handler:
    async def handler(backend: Backend, ctx: ToolContext, args: _Args) -> dict[str, Any]:
        key = action_key(ctx.conversation_id, name, args)
        return await backend.write(ctx, name, key, args.model_dump(mode="json"))

    return handler


# The writes: each runs in ``Backend.write`` under the policy (``frontdesk.shop.policy``).
for _name, _description, _args in (
    ("cancel_pending_order", "Cancel a pending order, with the customer's reason.", CancelArgs),
    (
        "modify_pending_order_address",
        "Change a pending order's shipping address.",
        OrderAddressArgs,
    ),
    (
        "modify_pending_order_payment",
        "Pay a pending order with another payment method.",
        PaymentArgs,
    ),
    (
        "modify_pending_order_items",
        "Swap items of a pending order for other variants of the same product (once per order).",
        SwapArgs,
    ),
    (
        "return_delivered_order_items",
        "Return items of a delivered order; refund to the original payment method or a gift card.",
        ItemsArgs,
    ),
    (
        "exchange_delivered_order_items",
        "Exchange items of a delivered order for other variants of the same product.",
        SwapArgs,
    ),
    ("change_default_address", "Change the customer's default address.", DefaultAddressArgs),
):
    TOOLS[_name] = Tool(_name, _description, _args, _writer(_name), needs_auth=True, writes=True)


def _product(backend: Backend, name: str) -> ProductRecord:
    wanted = name.strip().lower()
    for record in backend.products():
        if record.name.lower() == wanted:
            return record
    raise ToolRefused("unknown_product", f"We don't carry a product called {name!r}.")


@tool(
    "get_product_details", "A product's variants with their options, price and stock.", ProductArgs
)
async def _product_details(backend: Backend, ctx: ToolContext, args: ProductArgs) -> dict[str, Any]:
    return _product_view(_product(backend, args.product))


@tool(
    "compare_products",
    "Two to four products side by side: variants in stock, price range and options in stock.",
    CompareArgs,
)
async def _compare(backend: Backend, ctx: ToolContext, args: CompareArgs) -> dict[str, Any]:
    records = {r.name: r for r in (_product(backend, name) for name in args.products)}
    details = [_product_view(record) for record in records.values()]
    lines = [
        f"- {d['product']}: {d['in_stock']} of {d['variants']} variants in stock"
        + (f", {d['price_range']}; {d['options_text']}" if d["in_stock"] else "")
        for d in details
    ]
    return {"products": details, "text": "\n".join(lines)}


def _product_view(record: ProductRecord) -> dict[str, Any]:
    """A product's variants in stock, price range and the option values in stock."""
    stocked = record.in_stock()
    prices = [v.price for v in stocked]
    options: dict[str, list[str]] = {}
    for v in stocked:
        for k, value in v.options.items():
            options.setdefault(k, [])
            if value not in options[k]:
                options[k].append(value)
    return {
        "product": record.name,
        "product_id": record.product_id,
        "variants": len(record.variants),
        "in_stock": len(stocked),
        "price_range": f"{dollars(min(prices))} to {dollars(max(prices))}" if prices else "",
        "min_price": f"{min(prices):.2f}" if prices else "",
        "options_text": "; ".join(
            f"{k}: {', '.join(sorted(v, key=_value_order))}" for k, v in options.items()
        ),
    }


_SIZES = ("XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL")


def _value_order(value: str) -> tuple[int, float, str]:
    """Sizes in their order: 7, 8, 10 (not 10, 7, 8); S, M, L, XL; then the rest by name."""
    try:
        return (0, float(value), value)
    except ValueError:
        pass
    if value.upper() in _SIZES:
        return (1, float(_SIZES.index(value.upper())), value)
    return (2, 0.0, value.lower())


def _match_view(match: Match) -> dict[str, Any]:
    return {
        "product": match.product.name,
        "item_id": match.variant.item_id,
        "options": dict(match.variant.options),
        "price": float(match.variant.price),
        "label": match.label(),
    }


@tool(
    "search_catalog",
    "In-stock products and variants matching a product, option values and a maximum price.",
    SearchArgs,
)
async def _search(backend: Backend, ctx: ToolContext, args: SearchArgs) -> dict[str, Any]:
    products = backend.products()
    record = _product(backend, args.product) if args.product else None
    found = search(products, product=args.product, options=args.options, max_price=args.max_price)
    result: dict[str, Any] = {"matches": [_match_view(m) for m in found]}
    result["text"] = "\n".join(f"- {m.label()}" for m in found)
    if record is not None:
        exact = find_variant(record, args.options) if args.options else None
        result["exact_in_stock"] = bool(exact and exact.available)
        if args.options and (exact is None or not exact.available):
            wanted = exact.options if exact is not None else args.options
            others = alternatives(record, args.options, exclude=[exact.item_id] if exact else [])
            state = "out of stock" if exact is not None else "not something we make"
            result["unavailable"] = f"{record.name} in {options_text(wanted)} is {state}"
            result["alternatives_text"] = compare(record, others)
            result["matches"] = [] if others else result["matches"]
        elif len(found) > 1:
            result["comparison"] = compare(record, [m.variant for m in found])
        elif not found and args.max_price is not None:
            # Nothing within the budget: say what the lowest price is rather than "nothing".
            within = search([record], product=record.name, options=args.options, limit=1)
            if within:
                result["over_budget"] = (
                    f"Nothing fits a budget of {dollars(args.max_price)}, I'm afraid: the "
                    f"lowest-priced one in stock is the {within[0].label()}"
                )
    return result


@tool(
    "capture_lead",
    "Pass a prospective customer's interest to the sales team (name, email, interest, budget).",
    LeadArgs,
    writes=True,
)
async def _lead(backend: Backend, ctx: ToolContext, args: LeadArgs) -> dict[str, Any]:
    return await backend.lead(ctx, action_key(ctx.conversation_id, "capture_lead", args), args)


@tool("transfer_to_human", "Hand the conversation to a person on the support team.", TransferArgs)
async def _transfer(backend: Backend, ctx: ToolContext, args: TransferArgs) -> dict[str, Any]:
    ctx.effects["handoff"] = args.summary or "flow_transfer"
    return {"transferred": True}
