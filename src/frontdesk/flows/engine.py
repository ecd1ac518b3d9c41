"""The flow runner: one customer turn in, the flow's reply and the new state out.

Flow state lives in the conversation's state (``state["flows"]``, a stack of frames), so it
survives between turns and workers. A frame is the flow's name, the step it waits on, its
slots and its retry count. The stack lets a customer digress: a question the knowledge base
answers gets its answer and the flow's question again; another flow's request starts that flow
on top, and when it ends the earlier one resumes ("Now, back to your return."). "Cancel",
"stop" or "never mind" ends the flows at any step.

Also kept in the state: ``auth`` (the verified customer's id and order ids), ``memory`` (the
last order, product and options mentioned, the orders last listed, so "the second one" or
"and the blue one in M?" resolve) and ``summary`` (one line per finished flow: a short running
summary of the conversation). None of it holds personal data in clear: emails are tokens,
customers are keyed ids.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from frontdesk.company.catalog import Catalog
from frontdesk.company.guidelines import Guidelines
from frontdesk.core.types import Citation, Passage
from frontdesk.flows.definition import (
    AUTHENTICATE,
    Flow,
    Flows,
    Step,
    render,
    render_args,
    renders_fully,
)
from frontdesk.flows.slots import SLOT_TYPES, Invalid, Turn, asks_to_buy
from frontdesk.flows.tools import (
    Backend,
    ToolContext,
    ToolRefused,
    action_key,
    parse_args,
    run_tool,
)
from frontdesk.learning.intents import Prediction
from frontdesk.pipeline.entities import Entity, resolve_reference
from frontdesk.shop.records import ProductRecord

MAX_ATTEMPTS = 3
SUMMARY_LINES = 8

_YES = re.compile(
    r"^\s*(yes|yes please|yep|yeah|yup|y|confirm(ed)?|i confirm|go ahead|please do|do it|"
    r"proceed|correct|that'?s (right|correct)|sure|ok(ay)?,? (go ahead|do it|yes))"
    r"(,?\s*(please|pls|plz|go ahead|do it|that'?s (right|correct)|thanks?( you)?|confirm(ed)?))*"
    r"[\s!.]*$",
    re.IGNORECASE,
)
_NO = re.compile(r"^\s*(no|nope|nah|n|don'?t|do not|not now|no thanks?|wait)\b", re.IGNORECASE)
_STOP = re.compile(
    r"^\s*(cancel|stop|never\s?mind|forget (it|that|about it)|quit|abort|start over|leave it)"
    r"(\s+(it|that|this|please|then))*[\s!.]*$",
    re.IGNORECASE,
)
# A general question ("how do returns work?") is answered from the knowledge base rather than
# starting a flow; one about the customer's own things ("where is my order?") starts it.
_QUESTION = re.compile(
    r"^\s*(?:(?:how|what)(?:['’]?s)?|when|why|which|can|could|do|does|is|are|will|should|would)\b",
    re.IGNORECASE,
)
# Words in front of a question that do not change it ("actually wait, how long does the refund
# take?", "oh and what colours is it in?").
_LEAD_IN = re.compile(
    r"^\s*(?:(?:actually|wait|oh|ok(?:ay)?|so|and|also|btw|by the way|one more thing|"
    r"quick question|hmm+|um+|sorry|well|but)\b[\s,.!:;-]*)+",
    re.IGNORECASE,
)
# An indirect question ("My brother wants to know how long refunds take", "I was wondering
# what sizes you have") is read from its question word on.
_INDIRECT = re.compile(
    r"^.{0,40}?\b(?:wants?|wanted|would like|'d like|needs?|asked|asks|was wondering|"
    r"wondering|wonder)\s+(?:to know\s+)?(?=(?:how|what|when|why|which)\b)",
    re.IGNORECASE,
)
# "What happens if the new item in my exchange costs more?", "What does pending mean on my
# order?", "How many times can I change the items in my order?": questions about how things
# work, though "my" is in them.
_HYPOTHETICAL = re.compile(
    r"^\s*(?:what|how)\s+(?:happens|if)\b|^\s*what\s+would\s+happen\b"
    r"|^\s*what\s+(?:does|do|is)\b.{0,60}\bmean\b|^\s*how\s+(?:many\s+times|often)\b",
    re.I,
)
# A last sentence that only thanks or pleads ("… costs more? thanks") is not the question.
_COURTESY = re.compile(
    r"^\s*(?:thanks?(?: you)?(?: (?:so|very) much)?|thx|ty|cheers|please|pls|plz)[\s!.]*$", re.I
)
# A policy named without a question word ("return policy?") asks how things work too.
_POLICY = re.compile(r"\bpolic(y|ies)\b", re.IGNORECASE)
# A product's price ("how much is the backpack?"), not what shipping or a return costs.
_PRICE = re.compile(r"\b(how much|prices?|priced|costs?)\b", re.IGNORECASE)
_NOT_PRICE = re.compile(
    r"\b(ship|shipping|shipped|deliver|delivery|return|returns|refund|tax|taxes|duties|customs)\b",
    re.IGNORECASE,
)
# "Can I cancel my order?", "When do I get my refund after cancelling my order?": a question
# that also starts a flow. When a FAQ entry answers that very question (its question at least
# this similar), the answer comes first, then the flow's first question. Measured on the demo:
# "Can I cancel my order?" 0.86, "... change the payment method on my order?" 0.81, "When do
# I get my refund ...?" 0.81; "Can I change the size of an item in my order?" 0.67 (its best
# entry is about exchanges after delivery: misleading).
_ASKS = re.compile(
    r"^\s*(?:(?:can|could|may) (?:i|we)|is it possible to|am i able to"
    r"|how|what|when|where|which|why|who|do|does|is|are|will|would|should)\b",
    re.I,
)
_ANSWER_FIRST = 0.75
_HOW_TO = re.compile(r"^\s*(how|where)\s+(do|can|should|would)\s+(i|we|you)\b|^\s*how\s+to\b", re.I)
_PERSONAL = re.compile(
    r"\b(my|mine|me|i'?d|i want|(?<!do )i need|i would|i'?m|#?w\d{7}|can you|could you|would you|"
    r"will you|please|recommend|suggest|do you (have|sell|carry|stock)|is there|are there)\b",
    re.IGNORECASE,
)


class FlowMissing(LookupError):
    """The conversation is in a flow the company has since removed."""


@dataclass(frozen=True, slots=True)
class TurnInput:
    text: str  # pseudonymized, typos corrected: what slots are read from
    entities: tuple[Entity, ...]
    intent: Prediction | None
    passages: tuple[Passage, ...]
    confidence: float
    negative: bool
    core: str = ""  # the request without a greeting or introduction in front (default: text)


@dataclass(slots=True)
class FlowReply:
    text: str
    state: dict[str, Any]
    reason: str
    flow: str | None = None
    citations: tuple[Citation, ...] = ()
    grounded: str | None = None  # the knowledge passage quoted in ``text``, if any
    handoff: bool = False
    offer_human: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Runtime:
    flows: Flows
    backend: Backend
    conversation_id: str
    guidelines: Guidelines
    threshold: float
    catalog: Catalog | None = None
    products: Sequence[ProductRecord] = ()
    high_value: float | None = None  # order total at which an action goes to a person


class _Run:
    """One turn's work on a copy of the state."""

    def __init__(self, rt: Runtime, state: dict[str, Any], turn: TurnInput) -> None:
        self.rt = rt
        self.state = copy.deepcopy(state)
        self.turn = turn
        self.out: list[str] = []
        self.citations: tuple[Citation, ...] = ()
        self.grounded: str | None = None
        self.calls: list[dict[str, Any]] = []
        self.handoff: str | None = None
        self.offer_human = False
        self.reason = "flow"

    # --- state helpers -----------------------------------------------------------------

    @property
    def stack(self) -> list[dict[str, Any]]:
        stack: list[dict[str, Any]] = self.state.setdefault("flows", [])
        return stack

    @property
    def memory(self) -> dict[str, Any]:
        memory: dict[str, Any] = self.state.setdefault("memory", {})
        return memory

    @property
    def kinds(self) -> set[str]:
        """The entity kinds this message names."""
        return {e.kind for e in self.turn.entities}

    @property
    def customer_id(self) -> str | None:
        auth = self.state.get("auth") or {}
        value = auth.get("customer_id")
        return str(value) if value else None

    def flow(self, frame: dict[str, Any]) -> Flow:
        found = self.rt.flows.get(frame["name"])
        if found is None:  # the company removed the flow while a conversation was in it
            raise FlowMissing(frame["name"])
        return found

    def slot_turn(self, frame: dict[str, Any], text: str | None = None) -> Turn:
        entities = self.turn.entities
        if text is not None and text != self.turn.text:
            from frontdesk.pipeline.entities import extract

            entities = tuple(extract(text, self.rt.catalog))
        return Turn(
            text=self.turn.text if text is None else text,
            entities=entities,
            catalog=self.rt.catalog,
            products=self.rt.products,
            memory=self.memory,
            slots=frame["slots"],
        )

    def remember(self) -> None:
        """Carry what this message mentions into the conversation's memory."""
        memory = self.memory
        for entity in self.turn.entities:
            if entity.kind == "order_id":
                memory["order_id"] = entity.value
        products = [e.value for e in self.turn.entities if e.kind == "product"]
        if products and products[0] != memory.get("product"):
            memory["product"] = products[0]
            memory["options"] = {}
            memory.pop("max_price", None)

    # --- triggers --------------------------------------------------------------------------

    def triggered(self, exclude: str | None = None, *, patterns_only: bool = False) -> Flow | None:
        text = self.turn.text
        kinds = self.kinds
        intent = self.turn.intent
        names = self.rt.guidelines.intents
        if (
            intent is not None
            and intent.out_of_scope
            and intent.confidence >= names.min_confidence
            and not kinds
        ):
            # Sure that it is not the store's business, and nothing of the store's named: no
            # flow's words start one ("How do I track my Amazon order?", "recommend a movie").
            return None
        answered = self.turn.confidence >= self.rt.threshold
        # Goods the catalog may not name ("I want to buy a sleeping bag") count as a product
        # against a help-centre passage that only shares a word with them (bag care).
        named = kinds | {"product"} if asks_to_buy(text) else kinds
        candidates = [
            f
            for f in self.rt.flows
            if f.name not in (exclude, AUTHENTICATE)
            and not (f.triggers.entities and answered and not named & set(f.triggers.entities))
            and not f.excludes(text)
        ]
        for flow in candidates:
            if flow.matches(text, kinds):
                return flow
        if patterns_only:
            return None
        if (
            intent is not None
            and not intent.out_of_scope
            and intent.confidence >= min(names.min_confidence, 0.5)
        ):
            for flow in candidates:
                if intent.label in flow.triggers.intents:
                    return flow
        return None

    def general_question(self) -> bool:
        """A question about how things work, not a request about the customer's own things.
        Read on the last sentence of the request ("Just tell me. How do exchanges work?")."""
        last = _INDIRECT.sub("", self.last_sentence(), count=1)
        asks = _QUESTION.match(last) is not None or _POLICY.search(last) is not None
        if _HYPOTHETICAL.match(last):
            return True
        return asks and not _PERSONAL.search(last)

    def last_sentence(self) -> str:
        """The request's last sentence, less a closing courtesy ("… Thanks!") and words in
        front that do not change it ("actually wait, …")."""
        core = self.turn.core or self.turn.text
        sentences = [x for x in re.split(r"(?<=[.!?])\s+", core.strip()) if x]
        while len(sentences) > 1 and _COURTESY.match(sentences[-1]):
            sentences.pop()
        return _LEAD_IN.sub("", sentences[-1] if sentences else core, count=1)

    def knowledge_first(self) -> bool:
        return self.general_question() and self.turn.confidence >= self.rt.threshold

    def how_to(self, flow: Flow) -> bool:
        """A how-to question ("how do I wash my backpack?", "where do I find my order
        number?") that the help centre answers with confidence and that started the flow by
        its intent alone (none of its patterns matched): the help centre answers it, though
        "my" makes it sound like a request."""
        return (
            _HOW_TO.match(self.turn.core or self.turn.text) is not None
            and self.turn.confidence >= self.rt.threshold
            and not flow.matches(self.turn.text, self.kinds)
        )

    def about_options(self, flow: Flow) -> bool:
        """A question about a named product's options ("What colors does the backpack come
        in?"), its price ("how much is the backpack?") or two products against each other,
        that the flow's pattern matched: the catalog answers it (the options in stock, the
        prices) better than a help-centre article about the product."""
        catalog = self.rt.catalog
        if catalog is None or "product" not in flow.triggers.entities:
            return False
        if not flow.matches(self.turn.text, self.kinds) or "product" not in self.kinds:
            return False
        if len({e.value for e in self.turn.entities if e.kind == "product"}) > 1:
            return True  # "what's the difference between the sneakers and the running shoes?"
        text = self.turn.text.lower().replace("colour", "color")
        if _PRICE.search(text) and not _NOT_PRICE.search(text):
            return True
        return any(re.search(rf"\b{re.escape(n.lower())}s?\b", text) for n in catalog.option_names)

    def knowledge_answer(self) -> str | None:
        from frontdesk.pipeline.respond import clean_passage

        if not self.turn.passages or self.turn.confidence < self.rt.threshold:
            return None
        best = self.turn.passages[0]
        self.citations = (Citation(best.cite_id, best.cite_title),)
        self.grounded = clean_passage(best.text)
        return self.grounded

    # --- running ---------------------------------------------------------------------------

    def push(self, flow: Flow) -> None:
        if self.stack:
            self.stack[-1]["interrupted"] = True
        self.stack.append(self.frame(flow))
        auth = self.rt.flows.get(AUTHENTICATE)
        if flow.requires_auth and self.customer_id is None and auth is not None:
            self.stack.append(self.frame(auth))

    def frame(self, flow: Flow) -> dict[str, Any]:
        """A new frame, with the slots the opening message already gives."""
        frame: dict[str, Any] = {
            "name": flow.name,
            "step": 0,
            "slots": {},
            "attempts": 0,
            "opening": self.turn.text,
        }
        for step in flow.steps:
            kind = SLOT_TYPES[step.slot_type] if step.collect else None
            if kind is not None and kind.prefill and step.collect not in frame["slots"]:
                value = kind.extract(self.slot_turn(frame))
                if value is not None and not isinstance(value, Invalid):
                    frame["slots"][step.collect] = value
                    self.note(step, value)
        return frame

    def follow_up(self) -> Flow | None:
        """The flow that just finished, if this message only adds to it ("and in blue?"), or
        the flow that continues it (``after``: "in 2 liters?" after a product's details)."""
        last = self.rt.flows.get(str(self.state.get("last_flow", "")))
        kinds = self.kinds
        if last is None:
            return None
        names_product = "product" in kinds
        if not kinds & set(last.triggers.follow_up):
            if not names_product:
                for flow in self.rt.flows:
                    if last.name in flow.triggers.after and kinds & set(flow.triggers.follow_up):
                        return flow
            return last if self.another_listed_order(last) else None
        return last if not names_product or last.matches(self.turn.text, kinds) else None

    def another_listed_order(self, last: Flow) -> bool:
        """Another of the orders just listed ("and the first one?"), right after a flow that
        asked for an order. Only a short message that no flow's pattern matches."""
        if not any(step.slot_type == "order_id" for step in last.steps if step.collect):
            return False
        listed = [str(o) for o in self.memory.get("listed_orders", [])]
        current = self.memory.get("order_id")
        if len(listed) < 2 or len(self.turn.text.split()) > 6:
            return False
        picked = resolve_reference(self.turn.text, listed, current=current)
        if picked is None or picked == current:
            return False
        return self.triggered(patterns_only=True) is None

    async def start(self) -> bool:
        flow = self.follow_up()
        if flow is None:
            flow = self.triggered()
            if flow is None or (self.knowledge_first() and not self.about_options(flow)):
                return False
            if self.how_to(flow):
                return False
        self.push(flow)
        self.reason = f"flow_started:{flow.name}"
        if self.answers_first():
            answer = self.knowledge_answer()
            if answer is not None:
                self.out.append(answer)
        await self.advance()
        return True

    def answers_first(self) -> bool:
        """A question ("Can I change the payment method on my order?", "When do I get my refund
        after cancelling my order?") that a FAQ entry (a passage titled with a question)
        answers nearly word for word, naming no order: its answer goes before the flow's first
        question."""
        last = self.last_sentence()
        return (
            (_ASKS.match(last) is not None or last.rstrip().endswith("?"))
            and "order_id" not in self.kinds
            and bool(self.turn.passages)
            and self.turn.passages[0].title.rstrip().endswith("?")
            and self.turn.confidence >= max(self.rt.threshold, _ANSWER_FIRST)
        )

    async def reply(self) -> None:
        frame = self.stack[-1]
        flow = self.flow(frame)
        step = flow.steps[frame["step"]]
        if _STOP.match(self.turn.text):
            names = [
                self.flow(f).description for f in reversed(self.stack) if f["name"] != AUTHENTICATE
            ]
            self.stack.clear()
            what = names[0] if names else "that"
            self.out.append(
                f"Okay, I've stopped {what}. Nothing was changed. What else can I help you with?"
            )
            self.reason = "flow_cancelled"
            return
        switch = self.triggered(exclude=frame["name"], patterns_only=True)
        if (
            switch is not None
            and not self.general_question()
            and not (frame["name"] == AUTHENTICATE and switch.requires_auth)
        ):
            self.push(switch)
            self.reason = f"flow_switched:{switch.name}"
            await self.advance()
            return
        if step.kind == "confirm":
            await self.answer_confirm(frame, flow, step)
            return
        value = SLOT_TYPES[step.slot_type].extract(self.slot_turn(frame))
        if value is not None and not isinstance(value, Invalid):
            self.fill(frame, step, value)
            await self.advance()
            return
        if value is None and await self.digress(frame, flow, step):
            return
        frame["attempts"] = frame.get("attempts", 0) + 1
        if frame["attempts"] >= MAX_ATTEMPTS:
            self.out.append(
                "I'm having trouble with this. Would you like me to connect you with "
                "a person from our team?"
            )
            self.offer_human = True
            self.reason = "flow_stuck"
            return
        problem = value.message if isinstance(value, Invalid) else None
        self.out.append(problem or render(step.retry or step.prompt or "", self.view(frame)))
        self.reason = "flow_reask"

    async def digress(self, frame: dict[str, Any], flow: Flow, step: Step) -> bool:
        """Another flow's request, or a question the knowledge answers, in the middle."""
        other = None if self.general_question() else self.triggered(exclude=frame["name"])
        if other is not None and not (frame["name"] == AUTHENTICATE and other.requires_auth):
            self.push(other)
            self.reason = f"flow_switched:{other.name}"
            await self.advance()
            return True
        answer = self.knowledge_answer()
        if answer is not None and not (self.turn.negative and step.kind == "confirm"):
            again = self.prompt_of(frame, flow, step)
            label = "" if flow.name == AUTHENTICATE else f"Now, back to {flow.description}: "
            self.out.append(answer)
            self.out.append(f"{label}{again}" if label else again)
            self.reason = "flow_digression"
            return True
        return False

    def prompt_of(self, frame: dict[str, Any], flow: Flow, step: Step) -> str:
        template = step.confirm if step.kind == "confirm" else step.prompt
        return render(template or "", self.view(frame))

    async def answer_confirm(self, frame: dict[str, Any], flow: Flow, step: Step) -> None:
        if _YES.match(self.turn.text):
            frame["confirmed"] = frame.pop("pending", None)
            frame["step"] += 1
            await self.advance()
            return
        if self.turn.negative or _NO.match(self.turn.text):
            self.stack.pop()
            self.out.append("Okay, I haven't changed anything.")
            self.reason = "flow_declined"
            await self.resume()
            return
        if await self.digress(frame, flow, step):
            return
        self.out.append("To go ahead I need a clear yes; reply no to leave it as it is.")
        self.reason = "flow_confirm_reask"

    def fill(self, frame: dict[str, Any], step: Step, value: Any) -> None:
        assert step.collect is not None
        frame["slots"][step.collect] = value
        frame["attempts"] = 0
        self.note(step, value)
        frame["step"] += 1

    def note(self, step: Step, value: Any) -> None:
        """Keep a filled slot in memory where later turns refer back to it."""
        if step.slot_type == "order_id":
            self.memory["order_id"] = value
        if step.slot_type == "product_query" and isinstance(value, dict):
            self.memory["product"] = value.get("product")
            self.memory["options"] = dict(value.get("options") or {})
            if value.get("max_price") and not value.get("nothing_cheaper"):
                self.memory["max_price"] = value["max_price"]

    async def other_customer(self) -> bool:
        """One customer per conversation: a verified conversation that names another
        customer's email is refused, whatever flow it is in."""
        emails = [e.value for e in self.turn.entities if e.kind == "email"]
        if self.customer_id is None or not emails:
            return False
        ctx = ToolContext(self.rt.conversation_id, self.customer_id)
        try:
            await run_tool(self.rt.backend, ctx, "find_customer_by_email", {"email": emails[0]})
        except ToolRefused as refusal:
            if refusal.code != "one_customer":
                return False
            self.out.append(refusal.message)
            self.reason = "refused:one_customer"
            self.calls.append(
                {"tool": "find_customer_by_email", "ok": False, "refusal": refusal.code}
            )
            return True
        return False

    def view(self, frame: dict[str, Any]) -> dict[str, Any]:
        return {**frame["slots"], "memory": self.memory}

    async def advance(self) -> None:
        """Run steps until one needs the customer, the flow ends or it hands over."""
        for _ in range(200):  # a flow that loops forever is a flow-file mistake
            if not self.stack:
                return
            frame = self.stack[-1]
            flow = self.flow(frame)
            if frame["step"] >= len(flow.steps):
                self.finish(frame, flow)
                await self.resume()
                return
            step = flow.steps[frame["step"]]
            if step.when is not None and not step.when.holds(self.view(frame)):
                frame["step"] += 1
                continue
            kind = step.kind
            if kind == "collect":
                assert step.collect is not None
                if frame["slots"].get(step.collect) not in (None, ""):
                    frame["step"] += 1
                    continue
                kind_ = SLOT_TYPES[step.slot_type]
                found = None
                if frame.get("opening") and kind_.from_opening:
                    found = kind_.extract(self.slot_turn(frame, frame["opening"]))
                if (found is None or isinstance(found, Invalid)) and kind_.auto is not None:
                    found = kind_.auto(self.slot_turn(frame))
                if found is not None and not isinstance(found, Invalid):
                    self.fill(frame, step, found)
                    continue
                self.out.append(render(step.prompt or "", self.view(frame)))
                return
            if kind == "call":
                if not await self.call(frame, flow, step):
                    return
                continue
            if kind == "confirm":
                frame["pending"] = self.pending_key(frame, flow)
                self.out.append(render(step.confirm or "", self.view(frame)))
                return
            if kind == "say":
                self.out.append(render(step.say or "", self.view(frame)))
                frame["step"] += 1
                continue
            if kind == "goto":
                assert step.goto is not None
                frame["step"] = flow.index(step.goto)
                continue
            if kind == "handoff":
                self.handoff = step.handoff
                self.stack.clear()
                return
            if kind == "end":
                self.out.append(render(step.end or "", self.view(frame)))
                self.finish(frame, flow)
                await self.resume()
                return
        raise RuntimeError(f"flow {self.stack[-1]['name']!r} runs in a loop")

    def pending_key(self, frame: dict[str, Any], flow: Flow) -> str | None:
        """The action key of the first write after the confirm step: what the yes is for."""
        from frontdesk.flows.tools import TOOLS

        for step in flow.steps[frame["step"] + 1 :]:
            if step.call is not None and TOOLS[step.call].writes:
                try:
                    args = parse_args(step.call, render_args(step.args, self.view(frame)))
                except ToolRefused:
                    return None
                return action_key(self.rt.conversation_id, step.call, args)
        return None

    async def call(self, frame: dict[str, Any], flow: Flow, step: Step) -> bool:
        assert step.call is not None
        args = render_args(step.args, self.view(frame))
        ctx = ToolContext(
            self.rt.conversation_id, self.customer_id, confirmed=frame.pop("confirmed", None)
        )
        record: dict[str, Any] = {"tool": step.call, "args": _safe(args)}
        self.calls.append(record)
        try:
            result = await run_tool(self.rt.backend, ctx, step.call, args)
        except ToolRefused as refusal:
            record.update(ok=False, refusal=refusal.code)
            self.out.append(refusal.message)
            return await self.refused(frame, flow, step)
        record["ok"] = True
        if "authenticated" in ctx.effects:
            # The verified customer joins the context: their orders (ids and statuses) and
            # their payment methods (ids and kinds). Names, emails and addresses stay sealed in
            # the store and come through the tools when a step needs them.
            customer = str(ctx.effects["authenticated"])
            orders = await self.rt.backend.orders_of(customer)
            profile = await self.rt.backend.profile_view(customer)
            self.state["auth"] = {
                "customer_id": customer,
                "orders": [{"id": o.id, "status": o.status} for o in orders],
                "payment_methods": [
                    {"id": m["id"], "source": m["source"]} for m in profile["payment_methods"]
                ],
            }
        if "handoff" in ctx.effects:
            # The flow's own transfer: the reason is the rule, the summary goes to the agent.
            self.handoff = "flow_transfer"
            lines: list[str] = self.state.setdefault("summary", [])
            lines.append(str(ctx.effects["handoff"]))
            self.stack.clear()
            return False
        if result.get("matches"):
            # The lowest price shown, and of which product (None: several), for "a cheaper
            # one" next.
            prices = [float(m["price"]) for m in result["matches"]]
            names = {str(m["product"]) for m in result["matches"]}
            self.memory["shown"] = {
                "product": names.pop() if len(names) == 1 else None,
                "min_price": f"{min(prices):.2f}",
            }
        elif result.get("min_price") and result.get("product"):
            # A product's details: its lowest price in stock.
            self.memory["shown"] = {"product": result["product"], "min_price": result["min_price"]}
        if "order_ids" in result:
            self.memory["listed_orders"] = list(result["order_ids"])
            self.memory["listed_order_products"] = dict(result.get("order_products", {}))
            self.memory["listed_order_statuses"] = dict(result.get("order_statuses", {}))
        if (
            step.call == "check_order_action"
            and self.rt.high_value is not None
            and float(result.get("total", 0)) >= self.rt.high_value
        ):
            self.out.append(
                f"Order {result['order_id']} is a large one ({result['total_text']}), so a "
                "person from our team will take this from here."
            )
            self.handoff = "high_value_order"
            self.stack.clear()
            return False
        if step.save:
            frame["slots"][step.save] = result
        frame["step"] += 1
        return True

    async def refused(self, frame: dict[str, Any], flow: Flow, step: Step) -> bool:
        self.reason = f"refused:{step.call}"
        if step.on_refusal == "continue":
            frame["step"] += 1
            return True
        if step.on_refusal.startswith("retry:"):
            target = flow.index(step.on_refusal.removeprefix("retry:"))
            frame["attempts"] = frame.get("attempts", 0) + 1
            if frame["attempts"] >= MAX_ATTEMPTS:
                self.out.append("Would you like me to connect you with a person from our team?")
                self.offer_human = True
                self.stack.clear()
                return False
            for later in flow.steps[target:]:
                if later.collect:
                    frame["slots"].pop(later.collect, None)
                if later.save:
                    frame["slots"].pop(later.save, None)
            frame["step"] = target
            frame.pop("opening", None)
            return True
        self.stack.pop()
        await self.resume()
        return False

    def finish(self, frame: dict[str, Any], flow: Flow) -> None:
        if self.stack and self.stack[-1] is frame:
            self.stack.pop()
        # A flow that ended before what its summary says ("None of your orders has been
        # delivered yet") leaves no line: "Return booked for  from order ." misled the agent.
        if flow.summary and renders_fully(flow.summary, self.view(frame)):
            lines: list[str] = self.state.setdefault("summary", [])
            lines.append(render(flow.summary, self.view(frame)))
            del lines[:-SUMMARY_LINES]
        if flow.name != AUTHENTICATE:
            self.state["last_flow"] = flow.name
        if self.reason.startswith("flow") and flow.name != AUTHENTICATE:
            self.reason = f"flow_done:{flow.name}"

    async def resume(self) -> None:
        if not self.stack:
            return
        frame = self.stack[-1]
        flow = self.flow(frame)
        if frame.pop("interrupted", False):
            self.out.append(f"Now, back to {flow.description}.")
        await self.advance()


def _safe(args: dict[str, Any]) -> dict[str, Any]:
    """Call arguments as recorded in a reply's meta: no address, no name, no zip."""
    hidden = {"address", "first_name", "last_name", "zip", "name"}
    return {k: ("<hidden>" if k in hidden else v) for k, v in args.items()}


async def handle(rt: Runtime, state: dict[str, Any], turn: TurnInput) -> FlowReply | None:
    """The flow layer's reply to one turn, or None when no flow is active or triggered."""
    if not rt.flows:
        return None
    run = _Run(rt, state, turn)
    run.remember()
    active = bool(run.stack)
    try:
        if await run.other_customer():
            pass
        elif active:
            await run.reply()
        elif not await run.start():
            return None
    except FlowMissing:  # a flow this conversation was in no longer exists
        run.stack.clear()
        return None
    current = run.stack[-1]["name"] if run.stack else None
    if run.handoff is not None:
        run.reason = run.handoff
    return FlowReply(
        text="\n\n".join(t for t in run.out if t),
        state=run.state,
        reason=run.reason,
        flow=current,
        citations=run.citations,
        grounded=run.grounded,
        handoff=run.handoff is not None,
        offer_human=run.offer_human,
        calls=run.calls,
    )


def awaited_slot(state: Mapping[str, Any], flows: Flows) -> str | None:
    """The slot type the conversation's flow asked the customer for, if it is waiting for one
    (the privacy stage reads an answer to "What's your name?" as a name)."""
    stack = state.get("flows") or []
    if not stack:
        return None
    frame = stack[-1]
    flow = flows.get(str(frame.get("name", "")))
    index = int(frame.get("step", 0))
    if flow is None or index >= len(flow.steps):
        return None
    step = flow.steps[index]
    return step.slot_type if step.kind == "collect" else None
