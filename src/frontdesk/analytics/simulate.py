"""Simulated traffic: weeks of customer conversations with the demo store, played through the
real pipeline in this process, so that a fresh install shows a full analytics dashboard.

``frontdesk demo --simulate N`` calls :func:`simulate`. Every simulated customer is one of the
demo store's customers (``data/db.json``) with their real orders. They ask the help centre,
check and change orders through the flows, shop, ask what the help centre cannot answer, or
want a person, whom a simulated agent (a console user) then serves. Everything goes through
the actions the API and the console call (``do_receive_customer_message``, ``do_take``,
``do_agent_reply``, ``do_resolve``, ``do_end_conversation``, ``do_submit_csat`` ...), so
messages are pseudonymized, flows call their tools and events are written as in production.

Time is simulated with :func:`frontdesk.core.types.simulated_clock`. Conversations start at
random moments of the last weeks, more often in opening hours and on weekdays, and they
overlap on one timeline: a scheduler wakes one customer (or agent) at a time, sets the clock
to that moment and lets it act until it waits again. Between two messages a customer thinks
(the clock jumps); the bot's reply takes the real time it took, so response times are real.
The clock never passes the present, and the same seed plays the same conversations.

The simulated customer reads what the bot asks (the flow step it waits on) and answers from
what it knows; when a reply is not what its scenario expected it adapts or gives up politely,
and the report counts those cases (``unexpected``) instead of failing.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import heapq
import importlib
import inspect
import itertools
import json
import logging
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.actions.accounts import AccountError, do_add_user
from frontdesk.actions.console import ConsoleError, do_agent_reply, do_hand_back, do_resolve
from frontdesk.actions.console import do_take as _do_take
from frontdesk.actions.conversations import do_create_conversation, do_receive_customer_message
from frontdesk.actions.satisfaction import (
    CsatError,
    do_end_conversation,
    do_submit_csat,
    resolve_idle,
)
from frontdesk.adapters.store import people
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import EventRow, ShopOrderRow
from frontdesk.company.guidelines import WorkingHours
from frontdesk.core.types import Conversation, ConversationId, Mode, Status, simulated_clock
from frontdesk.core.types import utcnow as _utcnow
from frontdesk.pipeline.understand import needs_knowledge
from frontdesk.service import Frontdesk

log = logging.getLogger("frontdesk.simulate")

Progress = Callable[[int, int], None]

# The demo's agents: created when missing, with a random password nobody is told (an admin can
# reset it); the simulator acts as them directly.
AGENTS = (
    ("maya@northwind.example", "Maya (agent)"),
    ("sam@northwind.example", "Sam (agent)"),
    ("priya@northwind.example", "Priya (agent)"),
)

# What the customers come for, with weights (percent of conversations).
SCENARIOS = (("knowledge", 35), ("orders", 25), ("shopping", 15), ("gap", 10), ("handoff", 15))
# What they want within each kind, with weights.
TASKS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "orders": (
        (
            "status",
            "return",
            "exchange",
            "change_item",
            "cancel",
            "ship_address",
            "payment",
            "default_address",
            "account",
        ),
        (32, 14, 16, 10, 10, 7, 3, 5, 3),
    ),
    "shopping": (("browse", "lead"), (70, 30)),
    "handoff": (("request", "frustration", "sensitive", "damaged", "unclear"), (40, 18, 20, 15, 7)),
}
# Played at least once however few the conversations: each kind of outcome on the dashboard.
COVERAGE = (
    ("orders", "exchange"),
    ("orders", "change_item"),
    ("shopping", "lead"),
    ("handoff", "request"),
    ("handoff", "sensitive"),
    ("gap", ""),
    ("knowledge", ""),
    ("orders", "status"),
)
HIGH_VALUE = 2500.0  # an action on an order this large goes to a person; avoided when planning


# --- wording ----------------------------------------------------------------------------------
# Everything a simulated customer or agent types. Written for the demo store; the help-centre
# questions also come from its evaluation/retrieval.csv and knowledge/faq.csv.

HELLOS = ("hi", "hello", "hey there", "Hi!", "good morning", "hello?")
THANKS = ("thanks!", "thank you", "great, thanks", "perfect, thank you", "ok thanks", "thx")
GOODBYES = (
    "bye",
    "ok bye!",
    "that's all, goodbye",
    "have a good day, bye",
    "see ya",
    "goodbye",
    "great, that's everything. bye!",
)
YES = ("yes", "yes please", "yep", "yeah, go ahead", "Yes", "sure", "yes, go ahead", "correct")
NO = ("no", "no thanks", "nope, leave it", "no, don't")
NEVER_MIND = ("never mind", "forget it", "cancel that", "never mind then")
COMPLAINTS = (
    "I'm really not happy with this. ",
    "the last package arrived late and the box was a mess. ",
    "terrible experience with my last order. ",
    "ugh, this is so annoying. ",
    "I'm annoyed, nothing has gone right with this order. ",
    "really disappointed with the service lately. ",
)

KNOWLEDGE = (
    "how long until I get my refund?",
    "when will my refund show up on my card",
    "what's your returns policy",
    "do I have to pay for return shipping?",
    "how much do you charge for shipping",
    "is shipping free over a certain amount?",
    "how fast is express delivery",
    "do you deliver internationally",
    "what cards do you take",
    "do you accept paypal?",
    "do gift cards ever expire",
    "how do I clean my hiking boots",
    "can I put the fleece jacket in the washing machine",
    "what size jacket should I order",
    "do your running shoes run true to size",
    "any promo codes at the moment?",
    "the jacket I bought is cheaper now, can I get the difference back?",
    "when is your support team available",
    "why do you need my zip code?",
    "what do you do with my personal data",
    "when will out of stock items be back",
    "I didn't get an order confirmation email",
    "where do I find my order number",
    "can I add something to an order I already placed",
    "will you ever ask me for my password",
    "what does pending mean on my order",
    "how do exchanges work?",
    "which orders can I return?",
    "how long does standard delivery take?",
    "do you offer a warranty on electronics?",
    "how do your shoe sizes run?",
    "is the website screen reader friendly",
    "what happens if the item in my exchange costs more",
    "do I need to place a new order for an exchange?",
    "how many exchanges can I make on one order?",
    "can I cancel an order that has already shipped?",
    "how long do I have to send my return back?",
    "who pays the customs fees if I order from the UK?",
)

# Questions the help centre has no answer to, several wordings each, so that they group.
GAPS: dict[str, tuple[str, ...]] = {
    "gift wrapping": (
        "do you offer gift wrapping?",
        "is gift wrapping possible?",
        "can you gift wrap a present for me?",
        "can I add a gift message and wrapping?",
        "do you wrap items as gifts?",
    ),
    "loyalty points": (
        "do I earn points when I shop with you?",
        "how do rewards points work here",
        "can I collect points on my purchases?",
        "is there a loyalty scheme?",
        "how many loyalty points do I have?",
    ),
    "warranty registration": (
        "is there a warranty registration form?",
        "can I register my tent for an extended warranty?",
        "where can I register my new camera for the warranty?",
        "how do I register my warranty?",
    ),
    "buy now pay later": (
        "can I pay with klarna?",
        "do you support buy now pay later?",
        "can I pay in 4 installments with afterpay",
        "is afterpay available?",
    ),
    "price matching": (
        "do you price match?",
        "can you match amazon's price?",
        "another store sells it for less, will you match that?",
        "I saw this cheaper elsewhere, can you price match it?",
    ),
    "store pickup": (
        "can I pick up my order at one of your stores?",
        "is click and collect an option?",
        "can I pick up my parcel from a store near me?",
    ),
    "student discount": (
        "I'm at university, is there a student deal?",
        "I'm a student, do I get money off?",
        "do you do student discounts with a student ID?",
    ),
}
GAP_ANSWERS = {
    "gift wrapping": "We don't offer gift wrapping at the moment, sorry. You can send the "
    "order to the recipient's address and we leave prices off the packing slip.",
    "loyalty points": "We don't have a points programme right now; our newsletter sends the "
    "discount codes we run.",
    "warranty registration": "No registration is needed: the warranty starts on the delivery "
    "date of your order, and the order itself is your proof of purchase.",
    "buy now pay later": "We only take cards, PayPal and our gift cards for now, so no Klarna "
    "or Afterpay, sorry.",
    "price matching": "We don't match other shops' prices, sorry about that.",
    "store pickup": "We're online only, so there's no pickup; standard shipping is free over $75.",
    "student discount": "We don't have a student discount at the moment, sorry.",
}

HUMAN_REQUESTS = (
    "Can I talk to a real person please?",
    "I want to speak to a human",
    "agent please",
    "can you connect me to customer service",
    "is there a real person I can chat with?",
    "I'd rather speak to someone from your team",
)
FRUSTRATED = (
    "THIS IS RIDICULOUS, MY ORDER IS STILL NOT HERE AND NOBODY HELPS ME!!!",
    "absolutely useless bot, I've had enough!!!",
    "this is ridiculous!! I've asked three times and nobody helps, worst service ever",
    "I HAVE BEEN WAITING FOR WEEKS. THIS IS UNACCEPTABLE!!",
)
SENSITIVE = {
    "legal": (
        "I'm going to take legal action against your company",
        "my lawyer will be in touch about the refund",
        "if this isn't fixed I'll take you to small claims court",
    ),
    "safety": (
        "the charger caught fire while plugged in",
        "my son got an electric shock from the lamp",
        "the kettle is unsafe, the handle melted",
    ),
    "fraud": (
        "there's an unauthorized charge on my card from you",
        "I think I was scammed, I never ordered this",
        "someone placed an order on my account, I think it's fraud",
    ),
    "bereavement": (
        "my husband passed away, how do I close his account?",
        "my mother died last month and I need to cancel her orders",
    ),
}
WAITING_NOTES = (
    "ok, I'll wait",
    "thanks, I'm here",
    "it's about an order from last week btw",
    "you can also call me on {phone} if that's easier",
)
EXPLANATIONS = {
    "request": (
        "I was charged twice for the same order, can you check?",
        "my discount code didn't work at checkout and I paid full price",
        "I need to change something on an order that already shipped",
        "I'd like to know why my refund is taking so long",
    ),
    "frustration": (
        "I've been waiting three weeks for my package and nobody gives me a straight answer",
        "the tracking hasn't moved in ten days and I need it for a trip",
    ),
    "legal": ("I returned a grill a month ago and I still haven't got my refund.",),
    "safety": ("It got really hot and started smoking. Nobody was hurt, luckily.",),
    "fraud": ("There's a charge of $312 on my card that I don't recognise.",),
    "bereavement": ("I'd like to close the account and stop any emails, please.",),
    "damaged": (
        "The box was crushed and the item is cracked. Can I get a replacement?",
        "It arrived with a big scratch and one part is missing.",
    ),
    "gap": ("I just wanted to know about {topic}.",),
}
AGENT_HELLO = {
    "request": "Hi, this is {agent} from the Northwind support team. How can I help?",
    "frustration": "Hi, I'm {agent} from the support team. I'm sorry about the trouble, let's "
    "get this sorted. What happened?",
    "legal": "Hello, this is {agent} from Northwind Outfitters. I'm sorry things got to this "
    "point. Could you tell me what happened?",
    "safety": "Hi, this is {agent}. First: please stop using the product and unplug it. Is "
    "everyone all right? What happened exactly?",
    "fraud": "Hi, {agent} here from our payments team. I'll look into that charge with you. "
    "What do you see on your statement?",
    "bereavement": "Hello, this is {agent}. I'm very sorry for your loss. How can I help?",
    "damaged": "Hi, this is {agent}. I'm sorry your item arrived damaged. Could you describe "
    "the damage?",
    "gap": "Hi, {agent} here from the Northwind team. What can I help you with?",
}
AGENT_FIX = {
    "request": "Thanks, I've checked it and sorted it out on our side. You'll get an email "
    "confirmation shortly. Anything else I can do?",
    "frustration": "I've chased the carrier and set up a replacement that ships today by "
    "express at no cost. You'll get the tracking number by email.",
    "legal": "I've escalated this to our customer relations lead and issued the refund today; "
    "it takes 5-7 business days to reach your card.",
    "safety": "Thank you. I've opened a safety report and arranged a full refund; please don't "
    "send the item back, we'll email you disposal instructions.",
    "fraud": "I've flagged the charge for our payments team and secured your account. The "
    "charge will be reversed within 5 business days.",
    "bereavement": "I've closed the account and cancelled the pending orders, with refunds to "
    "the original payment methods. Take care.",
    "damaged": "I'm arranging a free replacement and emailing you a prepaid return label for "
    "the damaged one.",
    "gap": "{answer}",
}
AGENT_FOLLOW_UP = (
    "Hi, this is {agent} following up on your message from yesterday. I've emailed you with "
    "the details, so you'll find everything in your inbox."
)
COMMENTS = {
    5: ("Quick and easy, thanks!", "Nora was really helpful", "Got my answer in seconds."),
    4: ("Helpful, took a couple of tries.", "Good, but the chat was a bit slow.", "Fine."),
    3: ("OK but I had to repeat myself.", "Answer was a bit generic."),
    2: ("Didn't really answer my question.", "Took too long to get a person."),
    1: ("Useless.", "Still no answer to my question.", "Waited far too long."),
}
STREETS = ("Main St", "Oak Avenue", "Maple Drive", "Cedar Lane", "Pine Street", "Elm Road")
CITIES = (
    ("Denver", "CO", "80202"),
    ("Portland", "OR", "97201"),
    ("Austin", "TX", "78701"),
    ("Boston", "MA", "02108"),
    ("Seattle", "WA", "98101"),
    ("Chicago", "IL", "60601"),
)
FIRST_NAMES = ("Maria", "James", "Aisha", "Tom", "Lena", "Carlos", "Yuki", "Grace", "Omar")
LAST_NAMES = ("Lopez", "Carter", "Okafor", "Novak", "Schmidt", "Rivera", "Tanaka", "Reid")
GROUPS = ("hiking club", "office", "climbing gym", "scout troop", "running team", "staff")
LEAD_OPENERS = (
    "I'd like a quote for a bulk order for my team",
    "do you do business accounts? we need {qty} {product} for our {group}",
    "can I talk to sales about a corporate order?",
    "we're looking at a volume order of {product} for our {group}, who do I talk to?",
    "Hi, I'd like to contact sales about a wholesale order",
)


def _load_questions(company: Path, guidelines: Any) -> list[str]:
    """The help-centre questions: the store's labelled ones, its FAQ and the list above, less
    those that ask for a person or are small talk (another scenario plays those)."""
    found = list(KNOWLEDGE)
    for name in ("evaluation/retrieval.csv", "knowledge/faq.csv"):
        path = company / name
        if path.exists():
            with path.open(encoding="utf-8", newline="") as handle:
                found += [row["question"] for row in csv.DictReader(handle) if row.get("question")]
    return [q for q in dict.fromkeys(found) if needs_knowledge(q, guidelines)]


def _complaint_chance(progress: float) -> float:
    """How often a customer opens with a complaint: less as the weeks go by (the sentiment
    trend improves with the service)."""
    return 0.3 - 0.22 * progress


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[a-z]{5,}", w)]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    at = rng.randrange(1, len(word) - 2)
    how = rng.random()
    if how < 0.5:
        word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]  # swapped letters
    elif how < 0.8:
        word = word[:at] + word[at + 1 :]  # a letter left out
    else:
        word = word[:at] + word[at] + word[at:]  # a letter doubled
    words[i] = word
    return " ".join(words)


def _vary(rng: random.Random, text: str, *, polite: bool = True) -> str:
    """The same request as different people type it: casing, punctuation, a typo, a hello."""
    roll = rng.random()
    if roll < 0.3:
        text = text.lower()
    elif roll < 0.45 and text:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.25:
        text = text.rstrip("?.!")
    if rng.random() < 0.12:
        text = _typo(rng, text)
    if polite and rng.random() < 0.15:
        text = rng.choice(("Hi, ", "Hello! ", "hey ", "Good morning, ", "Hi there. ")) + text
    if polite and rng.random() < 0.08:
        text = text.rstrip("?") + rng.choice((" please", " pls", "? thanks", ", thank you!"))
    return text


def _plural(name: str) -> str:
    if name.endswith("s"):
        return name
    if name.endswith(("sh", "ch", "x")):
        return f"{name}es"
    if name.endswith("f"):
        return f"{name[:-1]}ves"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return f"{name[:-1]}ies"
    return f"{name}s"


def _option_words(option: str, value: str) -> str:
    """How a customer asks for an option value: "in blue", "in size 9", "with 2K resolution"."""
    if option in ("color", "material", "style"):
        return f"in {value}"
    if option == "size":
        return f"in size {value}"
    return f"with {option} {value}"


def _phone(rng: random.Random) -> str:
    return f"555-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def _address(rng: random.Random) -> str:
    city, state, zip_code = rng.choice(CITIES)
    street = f"{rng.randint(2, 980)} {rng.choice(STREETS)}"
    if rng.random() < 0.4:
        street += f", Apt {rng.randint(1, 30)}"
    return f"{street}, {city}, {state} {zip_code}"


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")


# --- the store as the customers know it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Customer:
    first: str
    last: str
    email: str
    zip: str
    payments: tuple[str, ...]  # payment sources: credit_card, paypal, gift_card
    orders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Order:
    id: str
    customer: str
    status: str
    items: tuple[dict[str, Any], ...]
    paid_with: str

    @property
    def total(self) -> float:
        return float(sum(float(i["price"]) for i in self.items))


@dataclass(slots=True)
class _Store:
    customers: dict[str, _Customer]
    orders: dict[str, _Order]
    products: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, path: Path, statuses: dict[str, str]) -> _Store:
        raw = json.loads(path.read_text(encoding="utf-8"))
        customers = {}
        for key, user in raw.get("users", {}).items():
            methods = user.get("payment_methods", {}).values()
            customers[key] = _Customer(
                first=user["name"]["first_name"],
                last=user["name"]["last_name"],
                email=user["email"],
                zip=str(user["address"]["zip"]),
                payments=tuple(sorted({str(m.get("source")) for m in methods})),
                orders=tuple(user.get("orders", [])),
            )
        orders = {}
        for key, order in raw.get("orders", {}).items():
            paid = next(
                (
                    str(p["payment_method_id"])
                    for p in order.get("payment_history", [])
                    if p.get("transaction_type") == "payment"
                ),
                "",
            )
            orders[key] = _Order(
                id=key,
                customer=order["user_id"],
                status=statuses.get(key, order["status"]),
                items=tuple(order.get("items", [])),
                paid_with=paid,
            )
        return cls(customers, orders, dict(raw.get("products", {})))

    def changes(self, order: _Order) -> list[tuple[dict[str, Any], dict[str, str], float]]:
        """Items of the order that come in another variant in stock that differs in one option:
        (item, {option: new value}, price difference)."""
        found = []
        for item in order.items:
            product = self.products.get(item["product_id"], {})
            options = dict(item.get("options", {}))
            for variant in product.get("variants", {}).values():
                other = dict(variant.get("options", {}))
                if not variant.get("available") or variant["item_id"] == item["item_id"]:
                    continue
                if set(other) != set(options):
                    continue
                diff = {k: str(v) for k, v in other.items() if options.get(k) != v}
                if len(diff) == 1 and all(v not in ("yes", "no", "none") for v in diff.values()):
                    found.append((item, diff, float(variant["price"]) - float(item["price"])))
        return found


# --- what each customer wants, planned before the timeline runs ---------------------------------


@dataclass(slots=True)
class _Plan:
    kind: str
    start: datetime
    seed: int
    progress: float  # 0 at the start of the simulated weeks, 1 at their end
    customer: _Customer
    channel: str = "web"
    task: str = ""
    order: _Order | None = None
    item: dict[str, Any] | None = None
    change: dict[str, str] = field(default_factory=dict)


def _start_times(
    rng: random.Random, count: int, start: datetime, end: datetime, hours: WorkingHours
) -> list[datetime]:
    """``count`` moments between start and end: most in opening hours, around midday more,
    fewer at night and at weekends, and more in the later weeks (the store is growing)."""
    zone = ZoneInfo(hours.timezone)
    span = (end - start).total_seconds()
    found: list[datetime] = []
    while len(found) < count:
        at = start + timedelta(seconds=int(rng.random() * span))
        local = at.astimezone(zone)
        if hours.is_open(at):
            hour = local.hour + local.minute / 60
            weight = 1.0 + 0.35 * math.exp(-(((hour - 13.0) / 2.5) ** 2))
        elif 7 <= local.hour < 23:
            weight = 0.28 if local.weekday() < 5 else 0.24
        else:
            weight = 0.05
        weight *= 0.6 + 0.8 * (at - start).total_seconds() / span
        if rng.random() * 1.9 < weight:
            found.append(at)
    return sorted(found)


def _plan(
    rng: random.Random,
    store: _Store,
    times: Sequence[datetime],
    hours: WorkingHours,
    start: datetime,
    end: datetime,
) -> list[_Plan]:
    span = max(1.0, (end - start).total_seconds())
    with_orders = sorted(k for k, c in store.customers.items() if c.orders)
    used: set[str] = set()
    pools: dict[str, list[_Order]] = {}
    for task in ("return", "exchange", "change_item", "cancel", "ship_address", "payment"):
        wanted = "delivered" if task in ("return", "exchange") else "pending"
        pool = [
            o
            for o in sorted(store.orders.values(), key=lambda o: o.id)
            if o.status == wanted and o.total < HIGH_VALUE and o.customer in store.customers
        ]
        if task in ("exchange", "change_item"):
            pool = [o for o in pool if store.changes(o)]
        if task == "payment":
            pool = [o for o in pool if len(store.customers[o.customer].payments) > 1]
        rng.shuffle(pool)
        pools[task] = pool
    count = len(times)
    kinds = rng.choices([k for k, _ in SCENARIOS], [w for _, w in SCENARIOS], k=count)
    tasks = ["" for _ in range(count)]
    for i, kind in enumerate(kinds):
        if kind in TASKS:
            options, task_weights = TASKS[kind]
            tasks[i] = rng.choices(options, task_weights)[0]
    # However few the conversations, each kind of outcome the dashboard shows is played once.
    # (in opening hours when there are enough, so that a person is there for the handoffs)
    daytime = [i for i, at in enumerate(times) if hours.is_open(at)]
    slots = daytime if len(daytime) >= len(COVERAGE) else list(range(count))
    places = rng.sample(slots, min(len(slots), len(COVERAGE)))
    for i, (kind, task) in zip(places, COVERAGE[: len(places)], strict=True):
        kinds[i], tasks[i] = kind, task
    plans = []
    for i, at in enumerate(times):
        plan = _Plan(
            kind=kinds[i],
            start=at,
            seed=rng.getrandbits(48),
            progress=(at - start).total_seconds() / span,
            customer=store.customers[rng.choice(with_orders)],
            channel="web" if rng.random() < 0.85 else "mobile",
            task=tasks[i],
        )
        left = pools.get(plan.task) if plan.kind == "orders" else None
        if left is not None:
            while left and left[-1].id in used:
                left.pop()
            if not left:
                plan.task = "status"
            else:
                plan.order = left.pop()
                used.add(plan.order.id)
                plan.customer = store.customers[plan.order.customer]
                if plan.task in ("exchange", "change_item"):
                    changes = store.changes(plan.order)
                    # Most exchanges go to a pricier variant: an upgrade is revenue.
                    dearer = [c for c in changes if c[2] > 0]
                    pick = rng.choice(dearer if dearer and rng.random() < 0.7 else changes)
                    plan.item, plan.change = pick[0], pick[1]
        if plan.task == "status":
            plan.order = store.orders.get(rng.choice(plan.customer.orders))
        elif plan.kind == "handoff":
            delivered = [
                store.orders[o]
                for o in plan.customer.orders
                if o in store.orders and store.orders[o].status == "delivered"
            ]
            if delivered:
                plan.order = rng.choice(delivered)
            elif plan.task == "damaged":
                plan.task = "request"
        plans.append(plan)
    return plans


# --- the timeline ------------------------------------------------------------------------------


class _Clock:
    """Simulated time: the moment the timeline set, plus the real time spent since (so a
    reply's processing time is real), never before the last reading nor after the present."""

    def __init__(self, start: datetime) -> None:
        self._base = start
        self._mark = time.perf_counter()

    def __call__(self) -> datetime:
        moment = self._base + timedelta(seconds=time.perf_counter() - self._mark)
        return min(moment, datetime.now(UTC))

    def set(self, when: datetime) -> None:
        self._base = max(when, self())
        self._mark = time.perf_counter()


class _Stop(Exception):
    """The present is reached: this conversation stays as it is now."""


_Wake = asyncio.Future[None] | Callable[[], Awaitable[None]]


class _Timeline:
    """Runs the conversations interleaved in simulated time, one actor at a time: the earliest
    waiting one is woken with the clock set to its moment and runs until it waits again."""

    def __init__(self, clock: _Clock, horizon: datetime, on_step: Callable[[], None]) -> None:
        self.clock = clock
        self.horizon = horizon
        self.on_step = on_step
        self.failures = 0
        self._queue: list[tuple[datetime, int, _Wake]] = []
        self._order = itertools.count()
        self._yielded = asyncio.Event()

    def at(self, when: datetime, work: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), work))

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass for this actor (whole seconds, so that the
        real milliseconds of processing do not change the order of events)."""
        moment = self.clock() + timedelta(seconds=max(1.0, seconds))
        when = moment.replace(microsecond=0) + timedelta(seconds=1)
        if when > self.horizon:
            raise _Stop
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (when, next(self._order), future))
        self._yielded.set()
        await future

    async def _guard(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            self.failures += 1
            log.exception("a simulated conversation failed")
        finally:
            self._yielded.set()

    async def run(self) -> None:
        running: set[asyncio.Task[None]] = set()
        while self._queue:
            when, _, item = heapq.heappop(self._queue)
            self.clock.set(when)
            self.on_step()
            self._yielded.clear()
            if isinstance(item, asyncio.Future):
                item.set_result(None)
            else:
                task = asyncio.create_task(self._guard(item))
                running.add(task)
                task.add_done_callback(running.discard)
            await self._yielded.wait()
        if running:
            await asyncio.gather(*running)


def _next_opening(hours: WorkingHours, after: datetime) -> datetime:
    moment = after.replace(second=0, microsecond=0)
    for _ in range(4 * 24 * 8):  # up to eight days, in quarter hours
        moment += timedelta(minutes=15)
        if hours.is_open(moment):
            return moment
    return moment


# --- the report -------------------------------------------------------------------------------


@dataclass
class SimulationReport:
    """What the simulation played, counted from the events it produced."""

    conversations: int = 0
    customer_messages: int = 0
    bot_replies: int = 0
    agent_replies: int = 0
    handoffs: int = 0
    resolved: Counter[str] = field(default_factory=Counter)  # by bot / agent / customer
    resolved_how: Counter[str] = field(default_factory=Counter)  # goodbye / idle / ...
    reopened: int = 0
    csat: int = 0
    csat_average: float | None = None
    conversions: int = 0
    revenue: float = 0.0
    leads: int = 0
    follow_ups: int = 0
    unexpected: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    scenarios: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    typed_emails: set[str] = field(default_factory=set, repr=False)

    def counts(self) -> dict[str, int]:
        """The outcome counts (the same for the same seed and store)."""
        return {
            "conversations": self.conversations,
            "customer_messages": self.customer_messages,
            "bot_replies": self.bot_replies,
            "agent_replies": self.agent_replies,
            "handoffs": self.handoffs,
            "resolved_bot": self.resolved["bot"],
            "resolved_agent": self.resolved["agent"],
            "resolved_customer": self.resolved["customer"],
            "reopened": self.reopened,
            "csat": self.csat,
            "conversions": self.conversions,
            "leads": self.leads,
            "follow_ups": self.follow_ups,
            "unexpected": sum(self.unexpected.values()),
            "errors": self.errors,
        }

    def summary(self) -> list[str]:
        def share(n: int) -> str:
            return f"{n / self.conversations:.0%}" if self.conversations else "-"

        span = ""
        if self.first is not None and self.last is not None:
            span = f" from {self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}"
        average = f", average {self.csat_average:.2f}" if self.csat_average is not None else ""
        mix = ", ".join(f"{k} {v}" for k, v in sorted(self.scenarios.items()))
        unexpected = sum(self.unexpected.values())
        which = ", ".join(f"{k} {v}" for k, v in sorted(self.unexpected.items()))
        which = f" ({which})" if which else ""
        rate = self.conversations / self.seconds if self.seconds else 0.0
        lines = [
            f"simulated {self.conversations} conversations{span} ({mix})",
            f"messages: {self.customer_messages} from customers, {self.bot_replies} bot replies, "
            f"{self.agent_replies} agent replies",
            f"handoffs: {self.handoffs} ({share(self.handoffs)}); follow-ups by email: "
            f"{self.follow_ups}",
            f"resolutions: {self.resolved['bot']} by the bot, {self.resolved['agent']} by an "
            f"agent, {self.resolved['customer']} left unfinished by the customer; "
            f"{self.reopened} reopened",
            f"CSAT given: {self.csat}{average}",
            f"conversions: {self.conversions} (revenue ${self.revenue:,.2f}); leads: {self.leads}",
            f"unexpected replies handled: {unexpected}{which}; errors: {self.errors}",
            f"took {self.seconds:.1f} s ({rate:.1f} conversations/s)",
        ]
        return lines + self.notes


# --- one customer ------------------------------------------------------------------------------


class _Chat:
    """A simulated customer in one conversation, and what happened to them."""

    def __init__(self, run: _Run, plan: _Plan) -> None:
        self.run = run
        self.fd = run.fd
        self.plan = plan
        self.rng = random.Random(plan.seed)  # noqa: S311 - simulation, not security
        self.conversation: Conversation | None = None
        self.state: dict[str, Any] = {}
        self.reply = ""
        self.cited = False
        self.quality = 3  # 0 (bad) .. 4 (great): how the customer feels about the service
        self.how = ""  # how the conversation was last resolved
        self.rated = False
        self.handed_off_once = False
        self.follow_up = False
        self.product = ""  # the product the customer asks about, if any
        self.by_email = self.rng.random() < 0.6  # how they prove who they are

    # --- state ---

    @property
    def id(self) -> ConversationId:
        assert self.conversation is not None
        return self.conversation.id

    @property
    def handed_off(self) -> bool:
        return self.conversation is not None and self.conversation.mode is Mode.HUMAN

    @property
    def resolved(self) -> bool:
        return self.conversation is not None and self.conversation.status is Status.RESOLVED

    @property
    def unclear(self) -> bool:
        return int(self.state.get("low_confidence_streak", 0) or 0) > 0

    @property
    def offered_human(self) -> bool:
        return bool(self.state.get("offered_human"))

    def asking(self) -> tuple[str, str, str] | None:
        """What the bot's flow waits for: (flow, slot or "confirm", slot type)."""
        frames = self.state.get("flows") or []
        if not frames:
            return None
        frame = frames[-1]
        flow = self.fd.flows.get(str(frame.get("name")))
        index = int(frame.get("step", 0))
        if flow is None or index >= len(flow.steps):
            return None
        step = flow.steps[index]
        if step.kind == "confirm":
            return flow.name, "confirm", "confirm"
        if step.collect:
            return flow.name, step.collect, step.slot_type
        return None

    def better(self) -> None:
        if self.quality >= 3:
            self.quality = 4

    def worse(self, by: int = 1) -> None:
        self.quality = max(0, self.quality - by)

    def unexpected(self, what: str) -> None:
        self.run.report.unexpected[what] += 1
        log.debug("conversation %s: %s", self.conversation.id if self.conversation else "-", what)
        self.worse()

    # --- acting ---

    async def pause(self, seconds: float) -> None:
        await self.run.timeline.sleep(seconds)

    async def think(self, low: int = 20, high: int = 180) -> None:
        """The customer reads the reply and types the next message."""
        await self.pause(int(self.rng.triangular(low, high, low + (high - low) / 5)))

    async def open(self) -> None:
        self.conversation = await do_create_conversation(self.fd, self.plan.channel)

    async def say(self, text: str) -> str:
        self.run.report.typed_emails.update(_EMAIL.findall(text))
        client_id = f"sim-{self.rng.getrandbits(64):016x}"
        result = await do_receive_customer_message(self.fd, self.id, text, client_id)
        self.conversation = result.conversation
        self.state = dict(result.conversation.state)
        self.reply = "\n\n".join(r.text for r in result.replies)
        self.cited = any(r.citations for r in result.replies)
        if result.handoff:
            self.handed_off_once = True
        return self.reply

    async def refresh(self) -> None:
        conversation_id = self.id
        found = await self.fd.db.run(lambda s: repo.get_conversation(s, conversation_id))
        if found is not None:
            self.conversation = found
            self.state = dict(found.state)

    async def end_chat(self) -> None:
        self.conversation = await do_end_conversation(self.fd, self.id)
        self.state = dict(self.conversation.state)
        self.how = "ended"

    async def ask(self, text: str) -> None:
        """Say something and deal with what comes back: a flow's questions, an offer of a
        person, an answer that missed (rephrase once), a handoff."""
        await self.say(text)
        await self.settle()

    async def settle(self) -> None:
        rng = self.rng
        if self.handed_off:
            return
        if self.asking() is not None:
            await self.follow_flow()
            return
        if self.offered_human:
            await self.think(10, 60)
            if rng.random() < 0.35:
                await self.say(rng.choice(YES))
            else:
                await self.say(rng.choice(("no thanks", "no, that's ok", "nah")))
                self.worse()
            return
        if self.unclear:
            self.worse()
        elif self.cited:
            self.better()

    # --- flows ---

    async def follow_flow(self) -> None:
        """Answer what the flow asks until it is done, hands over, or the customer gives up."""
        tries: Counter[str] = Counter()
        for _ in range(16):
            if self.handed_off or self.resolved:
                return
            asking = self.asking()
            if asking is None:
                self.better()  # the flow is done
                return
            flow, slot, kind = asking
            key = f"{flow}:{slot}"
            attempt = tries[key]
            tries[key] += 1
            if self.offered_human:  # the flow got stuck and offered a person
                await self.think(10, 60)
                if self.rng.random() < 0.5:
                    await self.say(self.rng.choice(YES))
                else:
                    await self.say(self.rng.choice(NEVER_MIND))
                self.unexpected(f"stuck in {key}")
                return
            answer = self.answer(flow, slot, kind, attempt) if attempt < 3 else None
            if answer is None:
                self.unexpected(f"no answer to {key}")
                await self.think(10, 60)
                await self.say(self.rng.choice(NEVER_MIND))
                return
            await self.think(8, 90)
            await self.say(answer)
        self.unexpected("flow too long")

    def answer(self, flow: str, slot: str, kind: str, attempt: int) -> str | None:
        """What this customer answers to the flow's question."""
        rng, plan, customer = self.rng, self.plan, self.plan.customer
        # A write the customer came for is confirmed; one that a misread question started is
        # not (changing one's own default address or sending a lead harms no other plan).
        frames = self.state.get("flows") or [{}]
        acting_on = (frames[-1].get("slots") or {}).get("order_id")
        mine = plan.task not in ("status", "account") and plan.order is not None
        planned = (mine and plan.order is not None and acting_on == plan.order.id) or flow in (
            "lead_capture",
            "change_default_address",
        )
        if kind == "identity":
            by_email = self.by_email != (attempt % 2 == 1)  # the other way on a retry
            if by_email:
                return rng.choice(
                    ("{e}", "it's {e}", "my email is {e}", "{e} is the one on my account")
                ).format(e=customer.email)
            return rng.choice(
                (
                    "{f} {l} {z}",
                    "{f} {l}, {z}",
                    "my name is {f} {l} and my zip code is {z}",
                    "It's {f} {l}, zip {z}",
                )
            ).format(f=customer.first, l=customer.last, z=customer.zip)
        if kind == "order_id":
            listed = list((self.state.get("memory") or {}).get("listed_orders", []))
            wanted = plan.order.id if plan.order is not None else (listed[0] if listed else None)
            if wanted is None:
                return None
            if wanted in listed and attempt == 0 and rng.random() < 0.35:
                ordinals = ("first", "second", "third", "fourth", "fifth")
                index = listed.index(wanted)
                if index < len(ordinals):
                    return f"the {ordinals[index]} one"
            return rng.choice(("{o}", "it's {o}", "order {o}", "{o} please")).format(o=wanted)
        if kind == "confirm":
            return rng.choice(YES) if planned and rng.random() < 0.92 else rng.choice(NO)
        if kind == "cancel_reason":
            return rng.choice(
                (
                    "I don't need it anymore",
                    "no longer needed",
                    "I ordered it by mistake",
                    "ordered the wrong thing by accident",
                    "changed my mind, don't need it",
                )
            )
        if kind == "items":
            if plan.item is not None and rng.random() < 0.5:
                return f"just the {plan.item['name'].lower()}"
            return rng.choice(("all of them", "everything", "the whole order", "all"))
        if kind == "item":
            if plan.item is None:
                return None
            name = str(plan.item["name"])
            return rng.choice(("the {n}", "{n}", "the {n} please")).format(n=name.lower())
        if kind == "new_variant":
            if not plan.change:
                return None
            option, value = next(iter(plan.change.items()))
            if attempt > 0:
                return value if attempt == 1 else f"{option}: {value}"
            return rng.choice(
                ("{o} {v}", "I'd like {o} {v} instead", "{o} {v} please", "can I get {o} {v}")
            ).format(o=option, v=value)
        if kind in ("payment_method", "new_payment_method", "refund_method"):
            if plan.task == "payment":
                original = plan.order.paid_with if plan.order is not None else ""
                others = [p for p in customer.payments if not original.startswith(p)]
                others = [p for p in others if p != "gift_card"] or others
                if others:
                    return f"my {others[0].replace('_', ' ')}"
                if kind == "new_payment_method":
                    # Told the order's own method is the only one: the customer lets it be.
                    return rng.choice(NEVER_MIND)
            choices = ["back to the original payment method", "the original payment method"]
            choices.append("same card I paid with" if "credit_card" in customer.payments else "")
            if "gift_card" in customer.payments and kind == "refund_method":
                choices.append("to my gift card")
            if "paypal" in customer.payments:
                choices.append("paypal")
            return rng.choice([c for c in choices if c])
        if kind == "order_change":
            if plan.task == "ship_address":
                return rng.choice(("the shipping address", "the address", "where it ships to"))
            if plan.task == "payment":
                return rng.choice(("the payment method", "how I pay for it"))
            if plan.task == "change_item":
                return rng.choice(("an item", "the size of an item", "one of the items"))
            return None
        if kind == "address":
            return _address(rng) if attempt == 0 else None
        if kind == "person_name":
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if kind == "email":
            first, last = rng.choice(FIRST_NAMES).lower(), rng.choice(LAST_NAMES).lower()
            domain = rng.choice(("example.com", "example.org", "example.net"))
            return rng.choice(("{e}", "it's {e}", "{e} works")).format(e=f"{first}.{last}@{domain}")
        if kind == "interest":
            product = self.run.product_phrase(rng)
            return f"{rng.randint(10, 60)} {product} for our {rng.choice(GROUPS)}"
        if kind == "budget":
            return rng.choice(
                (
                    f"about ${rng.randint(10, 80) * 100}",
                    f"around {rng.randint(10, 80) * 100} dollars",
                    "not sure yet",
                    f"{rng.randint(5, 40) * 500} dollars max",
                )
            )
        if kind in ("product_query", "product"):
            return self.product or self.run.product_name(rng)
        return None


# --- the scenarios: the customer's side, until the bot is done or a person takes over -----------


async def _knowledge(chat: _Chat) -> None:
    rng, run = chat.rng, chat.run
    if rng.random() < 0.15:
        await chat.say(rng.choice(HELLOS))
        await chat.think(5, 40)
    for n in range(rng.choices((1, 2, 3), (60, 30, 10))[0]):
        question = rng.choice(run.questions)
        if n == 0 and rng.random() < _complaint_chance(chat.plan.progress):
            question = rng.choice(COMPLAINTS) + question
            chat.worse()
        await chat.ask(_vary(rng, question))
        if chat.handed_off or chat.resolved:
            return
        if chat.unclear and rng.random() < 0.5:
            await chat.think()
            await chat.ask(_vary(rng, rng.choice(run.questions), polite=False))
            if chat.handed_off:
                return
        await chat.think()


async def _orders(chat: _Chat) -> None:
    rng, plan = chat.rng, chat.plan
    order = plan.order.id if plan.order is not None else ""
    item = str(plan.item["name"]).lower() if plan.item is not None else "item"
    change = next(iter(plan.change), "size")
    openers = {
        "status": (
            "Where is my order?",
            "where's my order {o}?",
            "can you check the status of my order",
            "has my order shipped yet?",
            "track my order {o} please",
            "show my orders",
        ),
        "return": (
            "I want to return my order {o}",
            "I need to return something",
            "I'd like to return the {i} from order {o}",
            "can I send back the {i} I got?",
        ),
        "exchange": (
            "I need to exchange my {i} for a different {c}",
            "I'd like to exchange an item from order {o}",
            "can I exchange the {i}? wrong {c}",
        ),
        "change_item": (
            "I want to change an item on order {o}",
            "can I change the {c} of the {i} on my order before it ships?",
            "I need to modify my order {o}",
        ),
        "cancel": (
            "I'd like to cancel order {o}",
            "I want to cancel my order",
            "pls cancel my order {o}, I don't need it anymore",
            "can you cancel my order? I ordered it by mistake",
        ),
        "ship_address": (
            "I need to change the shipping address on order {o}",
            "can you update the delivery address for my order",
            "I want to change the shipping address of my order",
        ),
        "payment": ("I'd like to change the payment method on order {o}",),
        "default_address": (
            "I moved and need to update my address",
            "please update my account address",
            "I have moved, can you change my default address?",
        ),
        "account": ("what are my account details?", "which payment methods do I have saved?"),
    }
    text = rng.choice(openers.get(plan.task, openers["status"])).format(o=order, i=item, c=change)
    if plan.task == "status" and rng.random() < 1.5 * _complaint_chance(plan.progress):
        text = rng.choice(
            (
                "I ordered two weeks ago and still nothing. This is really disappointing, "
                "where is my order?",
                "my order is late again, not happy. can you check the status?",
                "honestly pretty annoyed, the package is late. where's my order?",
            )
        )
        chat.worse()
    elif rng.random() < 0.06:
        text = f"Hi, my email is {plan.customer.email}. {text}"
    await chat.ask(_vary(rng, text))
    if chat.handed_off or chat.resolved:
        return
    if rng.random() < 0.15:
        await chat.think()
        await chat.ask(_vary(rng, rng.choice(chat.run.questions)))


async def _shopping(chat: _Chat) -> None:
    rng, run = chat.rng, chat.run
    if chat.plan.task == "lead":
        product, qty = run.product_phrase(rng), rng.randint(15, 80)
        opener = rng.choice(LEAD_OPENERS).format(qty=qty, product=product, group=rng.choice(GROUPS))
        await chat.ask(_vary(rng, opener))
        return
    question, chat.product, follow_up = run.product_question(rng)
    await chat.ask(_vary(rng, question))
    if chat.handed_off:
        return
    if follow_up and rng.random() < 0.45:
        await chat.think(15, 90)
        await chat.ask(_vary(rng, follow_up, polite=False))
    if rng.random() < 0.2:
        await chat.think()
        await chat.ask(_vary(rng, rng.choice(run.questions)))


async def _gap(chat: _Chat) -> None:
    rng = chat.rng
    topic = rng.choice(sorted(GAPS))
    chat.plan.task = topic
    wordings = list(GAPS[topic])
    rng.shuffle(wordings)
    await chat.ask(_vary(rng, wordings[0]))
    if chat.handed_off or chat.resolved:
        return
    chat.worse()
    if rng.random() < 0.6:
        await chat.think()
        again = wordings[1]
        if rng.random() < 0.5:
            again = rng.choice(("that doesn't answer my question. ", "no, that's not it. ")) + again
        await chat.ask(_vary(rng, again, polite=False))
        chat.worse()


async def _handoff(chat: _Chat) -> None:
    rng, plan = chat.rng, chat.plan
    how = plan.task
    if how == "request":
        if rng.random() < 0.3:
            await chat.ask(_vary(rng, rng.choice(chat.run.questions)))
            if chat.handed_off:
                return
            await chat.think()
        await chat.ask(_vary(rng, rng.choice(HUMAN_REQUESTS)))
    elif how == "frustration":
        await chat.ask(rng.choice(FRUSTRATED))
    elif how == "sensitive":
        topic = rng.choice(sorted(SENSITIVE))
        plan.task = topic
        await chat.ask(_vary(rng, rng.choice(SENSITIVE[topic]), polite=False))
    elif how == "damaged" and plan.order is not None:
        item = str(rng.choice(plan.order.items)["name"]).lower()
        text = rng.choice(
            (
                "My {i} arrived damaged",
                "the {i} I got is broken, it arrived like that",
                "my {i} came cracked in the box",
            )
        ).format(i=item)
        await chat.ask(_vary(rng, text))
    else:
        plan.task = "gap"
        await chat.ask("what's the weather like in Denver today?")
        await chat.think(10, 60)
        await chat.ask("who won the football game last night?")
    if not chat.handed_off and not chat.resolved:
        await chat.think(10, 60)
        await chat.ask(_vary(rng, rng.choice(HUMAN_REQUESTS)))
    if not chat.handed_off:
        chat.unexpected("no handoff")


SCENARIO_PLAYERS: dict[str, Callable[[_Chat], Awaitable[None]]] = {
    "knowledge": _knowledge,
    "orders": _orders,
    "shopping": _shopping,
    "gap": _gap,
    "handoff": _handoff,
}


# --- endings: the bot's, the agent's, the rating, the return a day later ---------------------


async def _bot_ending(chat: _Chat) -> None:
    rng = chat.rng
    if chat.resolved or chat.handed_off:
        return
    if chat.asking() is None and not chat.offered_human and rng.random() < 0.3:
        await chat.think(10, 60)
        await chat.say(_vary(rng, rng.choice(THANKS), polite=False))
    roll = rng.random()
    if roll < 0.45 and chat.asking() is None:
        await chat.think(5, 40)
        await chat.say(rng.choice(GOODBYES))
        if chat.resolved:
            chat.how = "goodbye"
            return
        chat.unexpected("goodbye not understood")
    if roll < 0.72:
        await chat.pause(rng.randint(5, 40))
        await chat.end_chat()
        return
    minutes = chat.fd.guidelines.analytics.resolve_idle_minutes or 30
    await chat.pause(minutes * 60 + rng.randint(60, 90 * 60))
    await resolve_idle(chat.fd)
    await chat.refresh()
    chat.how = "idle"


def _reason_key(reason: str, chat: _Chat) -> str:
    """Which of the agent's texts fit the handoff's reason."""
    topic = reason.removeprefix("sensitive:")
    if topic in AGENT_HELLO and topic not in ("request", "gap"):
        return topic
    if reason == "flow_transfer":
        return "damaged"
    return "gap" if chat.plan.kind == "gap" else "request"


async def _agent_serves(chat: _Chat) -> None:
    """A person takes the conversation over: minutes later in opening hours, the next
    working morning otherwise (after the customer left an email for a follow-up, or left)."""
    fd, rng, run = chat.fd, chat.rng, chat.run
    conversation_id = chat.id
    reason = await fd.db.run(
        lambda s: h.reason if (h := people.latest_handoff(s, conversation_id)) else ""
    )
    key = _reason_key(str(reason or ""), chat)
    hours = fd.guidelines.working_hours
    handed = _utcnow()
    if key in ("frustration", "legal", "fraud", "safety"):
        chat.worse()
    if not run.agents:
        chat.unexpected("no agents")
        await chat.pause(rng.randint(120, 900))
        await chat.end_chat()
        return
    if hours.is_open(handed):
        minutes = rng.lognormvariate(1.4, 0.6) * (1.25 - 0.45 * chat.plan.progress)
        minutes = min(25.0, max(1.0, minutes))
        if rng.random() < 0.3:
            await chat.pause(rng.randint(20, 90))
            await chat.say(rng.choice(WAITING_NOTES).format(phone=_phone(rng)))
        if minutes > 8 and rng.random() < 0.25:  # tired of waiting
            await chat.pause(rng.uniform(4, minutes) * 60)
            await chat.end_chat()
            chat.quality = 0
            return
        left = minutes * 60 - (_utcnow() - handed).total_seconds()
        await chat.pause(max(5.0, left))
    else:
        if rng.random() < 0.55:
            await chat.pause(rng.randint(20, 120))
            email = chat.plan.customer.email
            await chat.say(rng.choice(("{e}", "sure, it's {e}", "my email is {e}")).format(e=email))
            chat.follow_up = True
        elif rng.random() < 0.5:
            await chat.pause(rng.randint(60, 600))
            await chat.end_chat()
            chat.worse()
            return
        opening = _next_opening(hours, _utcnow())
        await chat.pause((opening - _utcnow()).total_seconds() + rng.randint(5, 90) * 60)
    waited = (_utcnow() - handed).total_seconds() / 60
    await chat.refresh()
    by_id = {agent.id: agent for agent in run.agents}
    assigned = chat.conversation.assigned_to if chat.conversation is not None else None
    agent = by_id.get(assigned or "") or rng.choice(run.agents)
    try:
        chat.conversation = await _do_take(fd, conversation_id, agent, force=False)
    except ConsoleError:
        chat.unexpected("agent could not take over")
        return
    name = agent.name.split(" ")[0]
    await chat.pause(rng.randint(10, 40))
    if chat.follow_up:
        await do_agent_reply(fd, conversation_id, agent, AGENT_FOLLOW_UP.format(agent=name))
        await chat.pause(rng.randint(60, 300))
        chat.conversation = await do_resolve(fd, conversation_id, agent)
        chat.how = "agent"
        chat.quality = min(chat.quality, 2)
        return
    if waited <= 4:
        chat.better()
    elif waited <= 10:
        chat.worse()
    else:
        chat.worse(2)
    await do_agent_reply(fd, conversation_id, agent, AGENT_HELLO[key].format(agent=name))
    await chat.think()
    topic = chat.plan.task if chat.plan.kind == "gap" else "something the bot couldn't answer"
    await chat.say(_vary(rng, rng.choice(EXPLANATIONS[key]).format(topic=topic), polite=False))
    await chat.pause(rng.randint(60, 240))
    answer = GAP_ANSWERS.get(chat.plan.task, "Let me check that for you. Done: it's sorted now.")
    await do_agent_reply(fd, conversation_id, agent, AGENT_FIX[key].format(answer=answer))
    if rng.random() < 0.7:
        await chat.think(15, 90)
        await chat.say(_vary(rng, rng.choice(THANKS), polite=False))
    await chat.pause(rng.randint(30, 180))
    if rng.random() < 0.15:
        chat.conversation = await do_hand_back(fd, conversation_id, agent)
        chat.state = dict(chat.conversation.state)
        if rng.random() < 0.5:
            await chat.think()
            await chat.ask(_vary(rng, rng.choice(run.questions)))
        if not chat.handed_off:
            await _bot_ending(chat)
        return
    chat.conversation = await do_resolve(fd, conversation_id, agent)
    chat.how = "agent"


def _score(rng: random.Random, quality: int, progress: float) -> int:
    weights = (
        (45, 25, 18, 8, 4),
        (20, 27, 28, 17, 8),
        (6, 12, 32, 32, 18),
        (2, 4, 12, 40, 42),
        (1, 2, 6, 31, 60),
    )[max(0, min(4, quality))]
    score = rng.choices((1, 2, 3, 4, 5), weights)[0]
    # The service gets better over the weeks: the ratings drift up.
    if score < 5 and rng.random() < 0.3 * progress:
        score += 1
    elif score > 1 and rng.random() < 0.3 * (1 - progress):
        score -= 1
    return score


async def _rate(chat: _Chat) -> None:
    rng = chat.rng
    await chat.refresh()
    if not chat.resolved or chat.rated:
        return
    chance = {"goodbye": 0.75, "ended": 0.62, "idle": 0.3, "agent": 0.68}.get(chat.how, 0.5)
    if chat.follow_up:
        chance = 0.25
    if rng.random() >= chance:
        return
    await chat.pause(rng.randint(3, 45))
    score = _score(rng, chat.quality, chat.plan.progress)
    comment = rng.choice(COMMENTS[score]) if rng.random() < 0.2 else None
    try:
        await do_submit_csat(chat.fd, chat.id, score, comment)
        chat.rated = True
    except CsatError as error:
        chat.unexpected(f"rating refused: {error.code}")


async def _come_back(chat: _Chat) -> None:
    """A customer the bot served comes back the next day with another question."""
    rng = chat.rng
    if not chat.resolved or chat.handed_off_once or rng.random() >= 0.07:
        return
    await chat.pause(rng.randint(16 * 3600, 30 * 3600))
    await chat.ask(_vary(rng, rng.choice(chat.run.questions)))
    if chat.handed_off:
        await _agent_serves(chat)
    else:
        await _bot_ending(chat)
    await _rate(chat)


# --- the run ----------------------------------------------------------------------------------


class _Run:
    def __init__(self, fd: Frontdesk, store: _Store, questions: list[str]) -> None:
        self.fd = fd
        self.store = store
        self.questions = questions
        self.report = SimulationReport()
        self.agents: list[people.User] = []
        self.timeline: _Timeline  # set by simulate()
        self.done = 0
        self.total = 0
        self.progress: Progress | None = None
        names = sorted({str(p.get("name")) for p in store.products.values() if p.get("name")})
        self.product_names = names or ["backpack"]

    def product_name(self, rng: random.Random) -> str:
        return rng.choice(self.product_names).lower()

    def product_phrase(self, rng: random.Random) -> str:
        return _plural(self.product_name(rng))

    def product_question(self, rng: random.Random) -> tuple[str, str, str | None]:
        """A question about a product of the catalog: (question, product, a follow-up that
        asks for another value of one option, if any)."""
        products = sorted(self.store.products.values(), key=lambda p: str(p.get("name")))
        product = rng.choice(products)
        name = str(product.get("name", "backpack")).lower()
        variants = [v for v in product.get("variants", {}).values() if v.get("available")]
        if not variants:
            return f"tell me about the {name}", name, None
        variant = rng.choice(variants)
        options = {k: str(v) for k, v in variant.get("options", {}).items()}
        keys = [k for k in ("color", "size", "material", "capacity", "style") if k in options]
        key = rng.choice(keys) if keys else ""
        budget = int(math.ceil(float(variant["price"]) * rng.uniform(1.02, 1.3) / 10.0) * 10)
        search = [
            f"any {_plural(name)} under ${budget}?",
            f"can you recommend a {name} under ${budget}",
            f"I'm looking for a {name} under ${budget}",
        ]
        details = [
            f"tell me about the {name}",
            f"how much is the {name}?",
            f"what options does the {name} come in?",
        ]
        if key:
            wanted = _option_words(key, options[key])
            search += [
                f"do you have the {name} {wanted}?",
                f"I'm looking for a {name} {wanted}",
                f"is the {name} {wanted} in stock?",
            ]
            if key in ("color", "material"):
                search.append(f"I'm looking for a {options[key]} {name}")
        others = sorted(
            {
                str(v["options"][key])
                for v in product.get("variants", {}).values()
                if key and key in v.get("options", {}) and str(v["options"][key]) != options[key]
            }
        )
        if rng.random() < 0.4:
            question = rng.choice(details)
            follow_up = (
                f"do you have the {name} {_option_words(key, rng.choice(others))}?"
                if others
                else None
            )
            return question, name, follow_up
        follow_up = None
        if others:
            other = _option_words(key, rng.choice(others))
            follow_up = rng.choice((f"and {other}?", f"what about {other}?", f"ok and {other}?"))
        return rng.choice(search), name, follow_up

    async def play(self, plan: _Plan) -> None:
        chat = _Chat(self, plan)
        try:
            await chat.open()
            await SCENARIO_PLAYERS[plan.kind](chat)
            if chat.handed_off:
                await _agent_serves(chat)
            else:
                await _bot_ending(chat)
            await _rate(chat)
            await _come_back(chat)
        except _Stop:
            pass  # the present is reached: the conversation stays open as it is
        finally:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)


async def _ensure_agents(fd: Frontdesk) -> list[people.User]:
    users = {u.email.lower(): u for u in await fd.db.run(people.users)}
    agents = []
    for email, name in AGENTS:
        user = users.get(email)
        if user is None:
            try:
                user = await do_add_user(fd, email, name, "agent", secrets.token_urlsafe(24))
            except AccountError:
                log.warning("could not create the simulated agent %s", email)
                continue
        if user.can("agent"):
            agents.append(user)
    return sorted(agents, key=lambda u: u.email)


def _statuses(session: Session) -> dict[str, str]:
    rows = session.execute(select(ShopOrderRow.id, ShopOrderRow.status)).tuples()
    return dict(rows.all())


def _last_event(session: Session) -> int:
    return int(session.execute(select(func.max(EventRow.id))).scalar_one_or_none() or 0)


def _events_after(session: Session, after: int) -> list[tuple[str, dict[str, Any], datetime]]:
    rows = session.execute(
        select(EventRow.type, EventRow.payload, EventRow.created_at)
        .where(EventRow.id > after)
        .order_by(EventRow.id)
    ).tuples()
    return [(t, dict(p or {}), c) for t, p, c in rows]


def _tally(report: SimulationReport, events: list[tuple[str, dict[str, Any], datetime]]) -> None:
    kinds = Counter(t for t, _, _ in events)
    report.conversations = kinds["conversation_opened"]
    report.customer_messages = kinds["message_received"]
    report.bot_replies = kinds["reply_sent"]
    report.agent_replies = kinds["agent_replied"]
    report.handoffs = kinds["handoff_requested"]
    report.reopened = kinds["conversation_reopened"]
    report.csat = kinds["csat_submitted"]
    report.conversions = kinds["conversion"]
    report.leads = kinds["lead_captured"]
    report.follow_ups = kinds["followup_requested"]
    scores = []
    for kind, payload, _ in events:
        if kind == "conversation_resolved":
            report.resolved[str(payload.get("by") or "agent")] += 1
            report.resolved_how[str(payload.get("how") or "agent")] += 1
        elif kind == "csat_submitted" and isinstance(payload.get("score"), int):
            scores.append(int(payload["score"]))
        elif kind == "conversion" and isinstance(payload.get("revenue"), int | float):
            report.revenue += float(payload["revenue"])
    report.csat_average = sum(scores) / len(scores) if scores else None
    stamps = [c if c.tzinfo else c.replace(tzinfo=UTC) for _, _, c in events]
    if stamps:
        report.first, report.last = min(stamps), max(stamps)


def _brief(result: object) -> str:
    """A job's result in one short line: its numbers and names, not its lists."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if not isinstance(result, dict):
        text = repr(result)
        return text if len(text) <= 160 else text[:157] + "..."
    parts = []
    for key, value in result.items():
        inner = value.items() if isinstance(value, dict) else [("", value)]
        for sub, item in inner:
            if isinstance(item, bool | int | float | str) and len(str(item)) <= 40:
                parts.append(f"{key}.{sub}={item}" if sub else f"{key}={item}")
    line = ", ".join(parts)
    return line if len(line) <= 200 else line[:197] + "..."


async def _after_hook(fd: Frontdesk, module: str, function: str, report: SimulationReport) -> None:
    """Run another part's job on the simulated data when it is installed (the analytics rollup,
    the insights); skipped with a note otherwise."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        report.notes.append(f"{module} is not installed: skipped {function}")
        return
    job = getattr(found, function, None)
    if job is None or not inspect.iscoroutinefunction(job):
        report.notes.append(f"{module} has no async {function}(): skipped")
        return
    try:
        result = await job(fd)
    except Exception as error:  # the simulated data stays; the job can be run again later
        log.exception("%s.%s failed after the simulation", module, function)
        report.notes.append(f"{module}.{function} failed: {error}")
        return
    report.notes.append(f"ran {module}.{function}: {_brief(result)}")


async def simulate(
    fd: Frontdesk,
    count: int,
    *,
    weeks: int = 6,
    seed: int = 7,
    now: datetime | None = None,
    progress: Progress | None = None,
    after_jobs: bool = True,
) -> SimulationReport:
    """Play ``count`` customer conversations with the started service ``fd`` (the demo store),
    spread over the ``weeks`` before ``now``; then roll the analytics up when that part is
    installed. Deterministic for a ``seed`` (and the same ``now`` and store data)."""
    began = time.perf_counter()
    company = fd.settings.company_dir
    if company is None or not (company / "data" / "db.json").exists():
        raise ValueError("the simulation needs a company folder with data/db.json (the demo)")
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(weeks=weeks)
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    statuses = await fd.db.run(_statuses)
    store = _Store.read(company / "data" / "db.json", statuses)
    run = _Run(fd, store, _load_questions(company, fd.guidelines))
    hours = fd.guidelines.working_hours
    times = _start_times(rng, count, start, end - timedelta(minutes=40), hours)
    plans = _plan(rng, store, times, hours, start, end)
    run.total, run.progress = len(plans), progress
    run.report.scenarios.update(p.kind for p in plans)
    first_event = await fd.db.run(_last_event)
    clock = _Clock(start - timedelta(days=1))
    presence = dict(fd.presence)

    def agents_at_their_desks() -> None:
        # In opening hours the simulated agents have the console open: handoffs get assigned.
        is_open = hours.is_open(clock())
        for agent in run.agents:
            if is_open:
                fd.presence[agent.id] = 1
            else:
                fd.presence.pop(agent.id, None)

    run.timeline = _Timeline(clock, end, agents_at_their_desks)
    if progress is not None:
        progress(0, len(plans))
    try:
        with simulated_clock(clock):
            run.agents = await _ensure_agents(fd)
            for plan in plans:
                run.timeline.at(plan.start, partial(run.play, plan))
            await run.timeline.run()
            clock.set(end)
            await resolve_idle(fd)
    finally:
        fd.presence.clear()
        fd.presence.update(presence)
    run.report.errors = run.timeline.failures
    _tally(run.report, await fd.db.run(lambda s: _events_after(s, first_event)))
    if after_jobs:
        await _after_hook(fd, "frontdesk.analytics.rollup", "run_rollup", run.report)
        await _after_hook(fd, "frontdesk.analytics.insights", "refresh_insights", run.report)
    run.report.seconds = time.perf_counter() - began
    return run.report
