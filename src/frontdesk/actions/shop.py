"""Store actions: the service's implementation of the tools' backend, and every write to the
store's data. A write is one transaction: the idempotency check, the policy check on the
current records, the change, the record of the action and its events (who, what, when)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from frontdesk.actions import vault
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.flows.tools import (
    AddressArgs,
    Backend,
    LeadArgs,
    ToolContext,
    ToolRefused,
)
from frontdesk.service import Frontdesk
from frontdesk.shop import policy
from frontdesk.shop.records import Order, ProductRecord, Profile

_TOKEN = re.compile(r"^<(EMAIL)_(\d+)>$")


class ShopBackend(Backend):
    def __init__(self, fd: Frontdesk) -> None:
        self.fd = fd

    # --- reads ---------------------------------------------------------------------------

    async def _vault(self, conversation_id: str, token: str) -> tuple[str, str | None] | None:
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        kind, number = match.group(1), int(match.group(2))
        return await self.fd.db.run(
            lambda s: repo.pseudonym_entry(s, conversation_id, kind, number)
        )

    async def email_value(self, ctx: ToolContext, email: str) -> tuple[str, str | None]:
        """The digest of an email given raw or as a token, and the raw value if known."""
        if _TOKEN.match(email.strip()):
            entry = await self._vault(ctx.conversation_id, email)
            if entry is None:
                raise ToolRefused("unknown_token", "I don't have that email address on record.")
            digest, sealed = entry
            return digest, None if sealed is None else self.fd.sealer.open(sealed, "vault")
        return shop_repo.email_digest(self.fd.secret, email), email.strip()

    async def customer_by_email(self, ctx: ToolContext, email: str) -> str | None:
        digest, _ = await self.email_value(ctx, email)
        return await self.fd.db.run(lambda s: shop_repo.customer_by_digest(s, email=digest))

    async def customer_by_name_zip(self, ctx: ToolContext, name: str, zip_code: str) -> str | None:
        def work(session: Session) -> str | None:
            words = vault.open_tokens(session, self.fd, ctx.conversation_id, name).split()
            if len(words) < 2:
                return None
            digest = shop_repo.name_zip_digest(self.fd.secret, words[0], words[-1], zip_code)
            return shop_repo.customer_by_digest(session, name_zip=digest)

        return await self.fd.db.run(work)

    async def profile(self, customer_id: str) -> Profile | None:
        return await self.fd.db.run(lambda s: shop_repo.profile(s, self.fd.sealer, customer_id))

    async def profile_view(self, customer_id: str) -> dict[str, Any]:
        found = await self.profile(customer_id)
        if found is None:
            raise ToolRefused("customer_not_found", "I can't find your account any more.")
        return {
            "payment_methods": [
                {"id": m.id, "source": m.source, "label": m.label(), "name": m.name()}
                for m in found.payment_methods
            ],
            "payment_methods_text": ", ".join(m.label() for m in found.payment_methods),
            "city": found.address.city,
        }

    async def order(self, order_id: str) -> Order | None:
        return await self.fd.db.run(lambda s: shop_repo.order(s, self.fd.sealer, order_id))

    async def orders_of(self, customer_id: str) -> list[Order]:
        return await self.fd.db.run(lambda s: shop_repo.orders_of(s, self.fd.sealer, customer_id))

    def products(self) -> list[ProductRecord]:
        return list(self.fd.products)

    # --- writes --------------------------------------------------------------------------

    async def write(
        self, ctx: ToolContext, tool: str, key: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        customer_id = ctx.customer_id
        assert customer_id is not None  # run_tool checked
        fd = self.fd
        products = {p.product_id: p for p in fd.products}

        def work(session: Session) -> dict[str, Any]:
            done = shop_repo.executed_action(session, key)
            if done is not None:
                return {**done, "repeated": True}
            profile = shop_repo.profile(session, fd.sealer, customer_id)
            if profile is None:
                raise ToolRefused("customer_not_found", "I can't find your account any more.")
            # The raw values behind tokens (an address typed in chat) are opened here, inside
            # the call; what is recorded of it keeps the tokens.
            raw = vault.open_tokens(session, fd, ctx.conversation_id, args)
            order = None
            if "order_id" in args:
                found = shop_repo.order(session, fd.sealer, args["order_id"])
                try:
                    order = policy.check_owner(found, customer_id, args["order_id"])
                except policy.Refusal as refusal:
                    raise ToolRefused(refusal.code, refusal.message) from refusal
            try:
                outcome = _apply(tool, raw, order, profile, products)
            except policy.Refusal as refusal:
                raise ToolRefused(refusal.code, refusal.message) from refusal
            if outcome.order is not None:
                shop_repo.save_order(session, fd.sealer, outcome.order)
            if outcome.profile is not None and outcome.profile != profile:
                shop_repo.save_profile(session, fd.sealer, fd.secret, outcome.profile)
            result = dict(outcome.result)
            if isinstance(args.get("address"), dict):
                # Back to the conversation (and the actions table) as typed: tokens, not values.
                result["address"] = AddressArgs.model_validate(args["address"]).address().text()
            shop_repo.record_action(
                session, key, tool, _loggable(args), result, ctx.conversation_id, customer_id
            )
            events: list[tuple[str, dict[str, Any]]] = [
                (
                    "action_executed",
                    {
                        "tool": tool,
                        "customer_id": customer_id,
                        "order_id": args.get("order_id"),
                        "by": "bot",
                        "key": key,
                    },
                )
            ]
            if outcome.conversion is not None:
                events.append(("conversion", {**outcome.conversion, "customer_id": customer_id}))
            repo.append_events(session, events, ctx.conversation_id)
            return result

        return await fd.db.run(work)

    async def lead(self, ctx: ToolContext, key: str, args: LeadArgs) -> dict[str, Any]:
        fd = self.fd
        digest, raw_email = await self.email_value(ctx, args.email)
        score = lead_score(args, fd.products)

        def work(session: Session) -> dict[str, Any]:
            done = shop_repo.executed_action(session, key)
            if done is not None:
                return {**done, "repeated": True}
            lead_id = str(uuid.uuid4())
            shop_repo.insert_lead(
                session,
                fd.sealer,
                lead_id=lead_id,
                conversation_id=ctx.conversation_id,
                contact={
                    "name": vault.open_tokens(session, fd, ctx.conversation_id, args.name),
                    "email": raw_email or "",
                },
                email_digest_value=digest,
                interest=args.interest,
                budget=None if args.budget is None else str(args.budget),
                score=score,
            )
            result = {"lead_id": lead_id, "score": score}
            shop_repo.record_action(
                session,
                key,
                "capture_lead",
                {"interest": args.interest},
                result,
                ctx.conversation_id,
                None,
            )
            repo.append_event(
                session, "lead_captured", {"lead_id": lead_id, "score": score}, ctx.conversation_id
            )
            return result

        return await fd.db.run(work)


def _loggable(args: dict[str, Any]) -> dict[str, Any]:
    """Arguments as kept in the actions table: an address is replaced by its city."""
    out = dict(args)
    if isinstance(out.get("address"), dict):
        out["address"] = {"city": out["address"].get("city", "")}
    return out


def _apply(
    tool: str,
    args: dict[str, Any],
    order: Order | None,
    profile: Profile,
    products: dict[str, ProductRecord],
) -> policy.Outcome:
    def need() -> Order:
        assert order is not None
        return order

    handlers: dict[str, Callable[[], policy.Outcome]] = {
        "cancel_pending_order": lambda: policy.cancel(need(), profile, args["reason"]),
        "modify_pending_order_address": lambda: policy.modify_address(
            need(), profile, AddressArgs.model_validate(args["address"]).address()
        ),
        "modify_pending_order_payment": lambda: policy.modify_payment(
            need(), profile, args["payment_method_id"]
        ),
        "modify_pending_order_items": lambda: policy.modify_items(
            need(),
            profile,
            args["item_ids"],
            args["new_item_ids"],
            args["payment_method_id"],
            products,
        ),
        "return_delivered_order_items": lambda: policy.return_items(
            need(), profile, args["item_ids"], args["payment_method_id"]
        ),
        "exchange_delivered_order_items": lambda: policy.exchange_items(
            need(),
            profile,
            args["item_ids"],
            args["new_item_ids"],
            args["payment_method_id"],
            products,
        ),
        "change_default_address": lambda: policy.change_default_address(
            profile, AddressArgs.model_validate(args["address"]).address()
        ),
    }
    if tool not in handlers:
        raise ToolRefused("unknown_tool", f"{tool} does not write")
    return handlers[tool]()


def lead_score(args: LeadArgs, products: Sequence[ProductRecord]) -> int:
    """0 to 100: contact given (40), a product we sell named (30), a budget that buys it (30;
    a budget at all: 15)."""
    score = 40 if args.email and args.name else 20
    interest = args.interest.lower()
    named = [
        p for p in products if p.name.lower() in interest or p.name.lower().rstrip("s") in interest
    ]
    if named:
        score += 30
    if args.budget is not None:
        cheapest = min((v.price for p in named for v in p.in_stock()), default=None)
        score += 30 if cheapest is not None and args.budget >= cheapest else 15
    return min(score, 100)
