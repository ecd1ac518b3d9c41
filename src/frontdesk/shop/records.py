"""The store's records as frozen values: customers, payment methods, orders, products.

They mirror the shape of a store's ``db.json`` (the tau2 retail format the demo store uses), so
a company with that export can load it as it is (``frontdesk.shop.importer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def money(value: float | str | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def dollars(value: Decimal) -> str:
    return f"${value:,.2f}"


def options_text(options: Mapping[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in options.items())


@dataclass(frozen=True, slots=True)
class Address:
    address1: str
    address2: str
    city: str
    state: str
    zip: str
    country: str = "USA"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Address:
        return cls(
            address1=str(raw.get("address1", "")).strip(),
            address2=str(raw.get("address2", "") or "").strip(),
            city=str(raw.get("city", "")).strip(),
            state=str(raw.get("state", "")).strip(),
            zip=str(raw.get("zip", "")).strip(),
            country=str(raw.get("country", "USA") or "USA").strip(),
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "address1": self.address1,
            "address2": self.address2,
            "city": self.city,
            "state": self.state,
            "zip": self.zip,
            "country": self.country,
        }

    def text(self) -> str:
        street = ", ".join(p for p in (self.address1, self.address2) if p)
        return f"{street}, {self.city}, {self.state} {self.zip}"


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    id: str
    source: str  # gift_card | paypal | credit_card
    brand: str = ""
    last_four: str = ""
    balance: Decimal | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PaymentMethod:
        balance = raw.get("balance")
        return cls(
            id=str(raw["id"]),
            source=str(raw["source"]),
            brand=str(raw.get("brand", "")),
            last_four=str(raw.get("last_four", "")),
            balance=None if balance is None else money(balance),
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "source": self.source}
        if self.brand:
            out["brand"] = self.brand
        if self.last_four:
            out["last_four"] = self.last_four
        if self.balance is not None:
            out["balance"] = float(self.balance)
        return out

    def name(self) -> str:
        """The method without its balance: "gift card", "PayPal", "Visa card ending 1234"."""
        return "gift card" if self.source == "gift_card" else self.label()

    def label(self) -> str:
        if self.source == "gift_card":
            balance = f" (balance {dollars(self.balance)})" if self.balance is not None else ""
            return f"gift card{balance}"
        if self.source == "paypal":
            return "PayPal"
        brand = self.brand.title() if self.brand else "Card"
        return f"{brand} card ending {self.last_four}" if self.last_four else f"{brand} card"


@dataclass(frozen=True, slots=True)
class Profile:
    customer_id: str
    first_name: str
    last_name: str
    email: str
    address: Address
    payment_methods: tuple[PaymentMethod, ...]
    external_id: str = ""  # the store's own id for the customer

    def payment_method(self, method_id: str) -> PaymentMethod | None:
        return next((m for m in self.payment_methods if m.id == method_id), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "address": self.address.as_dict(),
            "payment_methods": [m.as_dict() for m in self.payment_methods],
            "external_id": self.external_id,
        }

    @classmethod
    def from_dict(cls, customer_id: str, raw: Mapping[str, Any]) -> Profile:
        return cls(
            customer_id=customer_id,
            first_name=str(raw["first_name"]),
            last_name=str(raw["last_name"]),
            email=str(raw["email"]),
            address=Address.from_dict(raw["address"]),
            payment_methods=tuple(PaymentMethod.from_dict(m) for m in raw["payment_methods"]),
            external_id=str(raw.get("external_id", "")),
        )


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    product_id: str
    name: str
    price: Decimal
    options: dict[str, str] = field(hash=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Item:
        return cls(
            item_id=str(raw["item_id"]),
            product_id=str(raw["product_id"]),
            name=str(raw["name"]),
            price=money(raw["price"]),
            options={str(k): str(v) for k, v in dict(raw.get("options", {})).items()},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "product_id": self.product_id,
            "name": self.name,
            "price": float(self.price),
            "options": dict(self.options),
        }

    def label(self) -> str:
        return f"{self.name} ({options_text(self.options)})"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    customer_id: str
    status: str
    items: tuple[Item, ...]
    tracking: tuple[str, ...]
    payments: tuple[dict[str, Any], ...]
    address: Address
    details: dict[str, Any] = field(hash=False)

    @property
    def total(self) -> Decimal:
        return sum((item.price for item in self.items), Decimal("0.00"))

    @property
    def paid_with(self) -> str | None:
        """The payment method of the first payment: the order's original payment method."""
        for payment in self.payments:
            if payment.get("transaction_type") == "payment":
                return str(payment["payment_method_id"])
        return None


@dataclass(frozen=True, slots=True)
class Variant:
    item_id: str
    options: dict[str, str] = field(hash=False)
    available: bool = True
    price: Decimal = Decimal("0.00")

    def label(self) -> str:
        return options_text(self.options)


@dataclass(frozen=True, slots=True)
class ProductRecord:
    product_id: str
    name: str
    variants: tuple[Variant, ...]

    @classmethod
    def from_dict(cls, product_id: str, name: str, variants: Mapping[str, Any]) -> ProductRecord:
        return cls(
            product_id=product_id,
            name=name,
            variants=tuple(
                Variant(
                    item_id=str(v["item_id"]),
                    options={str(k): str(x) for k, x in dict(v.get("options", {})).items()},
                    available=bool(v.get("available", False)),
                    price=money(v["price"]),
                )
                for v in variants.values()
            ),
        )

    def variant(self, item_id: str) -> Variant | None:
        return next((v for v in self.variants if v.item_id == item_id), None)

    def in_stock(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.available)
