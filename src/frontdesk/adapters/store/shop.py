"""The store's data in Frontdesk's database: import from ``db.json``, reads and writes.

Customers are found by keyed digests (of the email, or of first name + last name + zip) and
their profile is sealed (``frontdesk.adapters.crypto``); an order's address is sealed too.
Items, statuses and products are kept in clear: they identify nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import Keyring, SealError
from frontdesk.adapters.store.tables import (
    LeadRow,
    ShopActionRow,
    ShopCustomerRow,
    ShopOrderRow,
    ShopProductRow,
)
from frontdesk.core.types import utcnow
from frontdesk.pipeline import privacy
from frontdesk.shop.records import Address, Item, Order, ProductRecord, Profile

PROFILE = "shop_customers.profile"
ORDER_ADDRESS = "shop_orders.address"
LEAD_CONTACT = "leads.contact"


class StoreDataError(ValueError):
    """The store's data file is missing, not JSON, or not shaped like a store export."""


def email_digest(secret: bytes, email: str) -> str:
    return privacy.digest(secret, privacy.EMAIL, email)


def customer_key(secret: bytes, external_id: str) -> str:
    """The id Frontdesk gives a store customer: a keyed digest of the store's own id, which in
    many stores (the demo's among them) spells the customer's name."""
    digest = hmac.new(secret, f"CUSTOMER:{external_id}".encode(), hashlib.sha256).hexdigest()
    return f"c_{digest[:24]}"


def name_zip_digest(secret: bytes, first_name: str, last_name: str, zip_code: str) -> str:
    key = f"NAMEZIP:{first_name.strip().lower()}|{last_name.strip().lower()}|{zip_code.strip()}"
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def read_store_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise StoreDataError(f"{path}: not found") from error
    except json.JSONDecodeError as error:
        raise StoreDataError(f"{path}: not JSON ({error})") from error
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), dict) for k in ("products", "users", "orders")
    ):
        raise StoreDataError(f"{path}: expected an object with products, users and orders")
    return data


def sealed_key_ids(session: Session) -> set[str]:
    """The key ids the store's sealed values were sealed under (one sample per table)."""
    found = set()
    for column in (ShopCustomerRow.profile, ShopOrderRow.address):
        value = session.execute(select(column).limit(1)).scalar_one_or_none()
        if value is not None:
            found.add(value.partition(":")[0])
    return found


def secret_matches(session: Session, sealer: Keyring, secret: bytes) -> bool:
    """Whether the customers' keyed ids were made with ``secret`` (one customer tells)."""
    row = session.execute(select(ShopCustomerRow.id, ShopCustomerRow.profile).limit(1)).first()
    if row is None:
        return True
    try:
        external = sealer.open_json(row.profile, PROFILE).get("external_id")
    except SealError:
        return False
    return not external or customer_key(secret, str(external)) == row.id


def store_loaded(session: Session) -> bool:
    return bool(session.execute(select(func.count()).select_from(ShopProductRow)).scalar_one())


def import_store(
    session: Session,
    data: Mapping[str, Any],
    secret: bytes,
    sealer: Keyring,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Replace the store's tables with ``data`` (a ``db.json`` object). Returns the counts."""
    now = utcnow()
    for table in (ShopOrderRow, ShopCustomerRow, ShopProductRow):
        session.execute(delete(table))
    products = []
    for key, raw in data["products"].items():
        try:
            products.append(
                {
                    "id": str(raw["product_id"]),
                    "name": str(raw["name"]),
                    "variants": raw["variants"],
                }
            )
        except (KeyError, TypeError) as error:
            raise StoreDataError(f"products.{key}: missing {error}") from error
    session.execute(ShopProductRow.__table__.insert(), products)  # type: ignore[attr-defined]
    customers = []
    for key, raw in data["users"].items():
        try:
            name = raw["name"]
            profile = Profile.from_dict(
                customer_key(secret, str(raw["user_id"])),
                {
                    "external_id": raw["user_id"],
                    "first_name": name["first_name"],
                    "last_name": name["last_name"],
                    "email": raw["email"],
                    "address": raw["address"],
                    "payment_methods": list(raw["payment_methods"].values()),
                },
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise StoreDataError(f"users.{key}: missing or malformed {error}") from error
        customers.append(
            {
                "id": profile.customer_id,
                "email_digest": email_digest(secret, profile.email),
                "name_zip_digest": name_zip_digest(
                    secret, profile.first_name, profile.last_name, profile.address.zip
                ),
                "profile": sealer.seal_json(profile.as_dict(), PROFILE),
                "updated_at": now,
            }
        )
    session.execute(ShopCustomerRow.__table__.insert(), customers)  # type: ignore[attr-defined]
    if progress:
        progress(len(products) + len(customers))
    orders = []
    for key, raw in data["orders"].items():
        try:
            orders.append(
                {
                    "id": str(raw["order_id"]),
                    "customer_id": customer_key(secret, str(raw["user_id"])),
                    "status": str(raw["status"]),
                    "items": [Item.from_dict(i).as_dict() for i in raw["items"]],
                    "fulfillments": list(raw.get("fulfillments", [])),
                    "payments": list(raw.get("payment_history", [])),
                    "address": sealer.seal_json(
                        Address.from_dict(raw["address"]).as_dict(), ORDER_ADDRESS
                    ),
                    "details": {},
                    "updated_at": now,
                }
            )
        except (KeyError, TypeError) as error:
            raise StoreDataError(f"orders.{key}: missing or malformed {error}") from error
    session.execute(ShopOrderRow.__table__.insert(), orders)  # type: ignore[attr-defined]
    if progress:
        progress(len(orders))
    return {"products": len(products), "customers": len(customers), "orders": len(orders)}


# --- reads ---------------------------------------------------------------------------------


def customer_by_digest(
    session: Session, *, email: str | None = None, name_zip: str | None = None
) -> str | None:
    column = ShopCustomerRow.email_digest if email else ShopCustomerRow.name_zip_digest
    wanted = email or name_zip
    rows = session.execute(select(ShopCustomerRow.id).where(column == wanted).limit(2)).scalars()
    found = list(rows)
    return found[0] if len(found) == 1 else None


def profile(session: Session, sealer: Keyring, customer_id: str) -> Profile | None:
    sealed = session.execute(
        select(ShopCustomerRow.profile).where(ShopCustomerRow.id == customer_id)
    ).scalar_one_or_none()
    if sealed is None:
        return None
    return Profile.from_dict(customer_id, sealer.open_json(sealed, PROFILE))


def _order(row: ShopOrderRow, sealer: Keyring) -> Order:
    return Order(
        id=row.id,
        customer_id=row.customer_id,
        status=row.status,
        items=tuple(Item.from_dict(i) for i in row.items),
        tracking=tuple(t for f in row.fulfillments for t in f.get("tracking_id", [])),
        payments=tuple(row.payments),
        address=Address.from_dict(sealer.open_json(row.address, ORDER_ADDRESS)),
        details=dict(row.details),
    )


def order(session: Session, sealer: Keyring, order_id: str) -> Order | None:
    row = session.get(ShopOrderRow, order_id)
    return None if row is None else _order(row, sealer)


def orders_of(session: Session, sealer: Keyring, customer_id: str) -> list[Order]:
    rows = session.execute(
        select(ShopOrderRow)
        .where(ShopOrderRow.customer_id == customer_id)
        .order_by(ShopOrderRow.id)
    ).scalars()
    return [_order(row, sealer) for row in rows]


def products(session: Session) -> list[ProductRecord]:
    rows = session.execute(select(ShopProductRow).order_by(ShopProductRow.name)).scalars()
    return [ProductRecord.from_dict(r.id, r.name, r.variants) for r in rows]


def products_json(session: Session) -> dict[str, Any]:
    """The products in ``db.json`` shape (for ``Catalog.from_db_products``)."""
    rows = session.execute(select(ShopProductRow)).scalars()
    return {r.id: {"name": r.name, "product_id": r.id, "variants": r.variants} for r in rows}


# --- writes --------------------------------------------------------------------------------


def save_order(session: Session, sealer: Keyring, changed: Order) -> None:
    session.execute(
        update(ShopOrderRow)
        .where(ShopOrderRow.id == changed.id)
        .values(
            status=changed.status,
            items=[i.as_dict() for i in changed.items],
            payments=list(changed.payments),
            address=sealer.seal_json(changed.address.as_dict(), ORDER_ADDRESS),
            details=changed.details,
            updated_at=utcnow(),
        )
    )


def save_profile(session: Session, sealer: Keyring, secret: bytes, changed: Profile) -> None:
    session.execute(
        update(ShopCustomerRow)
        .where(ShopCustomerRow.id == changed.customer_id)
        .values(
            profile=sealer.seal_json(changed.as_dict(), PROFILE),
            name_zip_digest=name_zip_digest(
                secret, changed.first_name, changed.last_name, changed.address.zip
            ),
            updated_at=utcnow(),
        )
    )


def executed_action(session: Session, key: str) -> dict[str, Any] | None:
    row = session.execute(
        select(ShopActionRow.result).where(ShopActionRow.key == key)
    ).scalar_one_or_none()
    return None if row is None else dict(row)


def record_action(
    session: Session,
    key: str,
    tool: str,
    args: Mapping[str, Any],
    result: Mapping[str, Any],
    conversation_id: str | None,
    customer_id: str | None,
) -> None:
    session.add(
        ShopActionRow(
            key=key,
            conversation_id=conversation_id,
            customer_id=customer_id,
            tool=tool,
            args=dict(args),
            result=dict(result),
            created_at=utcnow(),
        )
    )


def insert_lead(
    session: Session,
    sealer: Keyring,
    *,
    lead_id: str,
    conversation_id: str | None,
    contact: Mapping[str, str],
    email_digest_value: str | None,
    interest: str,
    budget: str | None,
    score: int,
) -> None:
    session.add(
        LeadRow(
            id=lead_id,
            conversation_id=conversation_id,
            contact=sealer.seal_json(dict(contact), LEAD_CONTACT),
            email_digest=email_digest_value,
            interest=interest[:300],
            budget=budget,
            score=score,
            created_at=utcnow(),
        )
    )
