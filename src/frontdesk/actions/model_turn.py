"""A turn written by a generative model: prompt, stream, tools, guard, fallback, usage.

Called by the turn (``actions.conversations``) when a model backend is configured and the
decision is a knowledge answer or a low-confidence turn. The model sees the pseudonymized
conversation and the turn's sources (``pipeline.prompt``); each sentence it writes is checked
(``pipeline.grounding``) and only then published to the customer's socket as a ``draft``
frame. Tool calls pass the policy gate (``flows.tools.run_tool``) and only the read-only tools
are offered; writes stay with the flows, which ask for an explicit yes first.

When the model is down, slow, over budget, or writes something the guard refuses, the turn's
fallback (the extractive answer or the templated text) is sent: the customer always gets a
reply, and the reason is recorded in the reply's ``meta["model"]`` and as events.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from frontdesk.core.chat import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    ModelUnavailable,
    ToolCall,
    Usage,
    estimate_tokens,
)
from frontdesk.core.ports import Vector
from frontdesk.core.types import Message, Passage
from frontdesk.flows import tools as flow_tools
from frontdesk.pipeline import prompt as prompts
from frontdesk.pipeline.decide import Action, Decision
from frontdesk.pipeline.grounding import (
    ReplyChecker,
    Source,
    clean_reply,
    cut,
    split_sentences,
    tool_text,
)
from frontdesk.pipeline.respond import Draft
from frontdesk.service import Frontdesk

log = logging.getLogger("frontdesk.model")

# The tools a model may call: reads of the verified customer's orders and of the catalog.
MODEL_TOOLS = (
    "check_order_action",
    "compare_products",
    "get_order_details",
    "get_product_details",
    "list_orders",
    "search_catalog",
)
TOOL_ROUNDS = 2  # model calls that may ask for tools before the one that must answer


@dataclass(slots=True)
class ModelTurn:
    """What the model produced, or why the fallback is sent."""

    draft: Draft
    used_model: bool  # the model's text is sent (False: the fallback)
    claims: int = 0  # supported factual sentences in the model's text
    interventions: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: Usage | None = None
    cost: float = 0.0
    model_seconds: float = 0.0  # time spent waiting on the model (its own time)


@dataclass(slots=True)
class _Call:
    """Bookkeeping across the model calls of one turn."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    seconds: float = 0.0
    first_token: float | None = None
    calls: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)

    def add(self, usage: Usage | None) -> None:
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.estimated = self.estimated or usage.estimated


@functools.cache
def _model_tool_schemas() -> tuple[dict[str, Any], ...]:
    """The offered tools' schemas, built once (pydantic takes about 2 ms to build them)."""
    return tuple(flow_tools.TOOLS[name].schema() for name in MODEL_TOOLS)


def tools_offered(fd: Frontdesk) -> tuple[dict[str, Any], ...]:
    return _model_tool_schemas() if fd.settings.model_tools else ()


def budget_left(fd: Frontdesk, state: dict[str, Any]) -> bool:
    budget = fd.settings.model_budget_tokens
    used = int((state.get("model_usage") or {}).get("tokens", 0))
    return budget == 0 or used < budget


def _scrub(fd: Frontdesk, value: Any) -> Any:
    """A tool result with any personal data the tools let through replaced by its kind
    (the read tools show none; this is the net under them)."""
    if isinstance(value, str):
        spans = fd.detector.detect(value)
        for span in reversed(spans):
            value = value[: span.start] + f"<{span.kind}>" + value[span.end :]
        return value
    if isinstance(value, dict):
        return {k: _scrub(fd, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(fd, v) for v in value]
    return value


async def _timed(
    stream: AsyncIterator[Any], call: _Call, started: float
) -> AsyncGenerator[Any, None]:
    """The stream, with the time spent waiting on it added to ``call.seconds``."""
    while True:
        waited = time.perf_counter()
        try:
            chunk = await anext(stream)
        except StopAsyncIteration:
            call.seconds += time.perf_counter() - waited
            return
        call.seconds += time.perf_counter() - waited
        if call.first_token is None and (chunk.text or chunk.tool_calls):
            call.first_token = time.perf_counter() - started
        yield chunk


async def write_reply(
    fd: Frontdesk,
    model: ChatModel,
    *,
    customer: Message,
    history: tuple[Message, ...],
    state: dict[str, Any],
    passages: tuple[Passage, ...],
    approved: list[prompts.ApprovedHint],
    fallback: Draft,
    guidelines: Any,
    reference: str | None = None,
) -> ModelTurn:
    """The model's reply to ``customer`` (pseudonymized), streamed to the socket sentence by
    sentence as each passes the guard; or ``fallback``."""
    settings = fd.settings
    if not budget_left(fd, state):
        turn = ModelTurn(fallback, used_model=False)
        turn.meta = {"backend": model.backend, "model": model.model, "fallback": "budget"}
        turn.events.append(("model_fallback", {"reason": "budget"}))
        return turn
    canary = prompts.new_canary()
    context = prompts.customer_context(state)
    kept = passages[: settings.model_passages]
    messages = list(
        prompts.build_messages(
            guidelines,
            text=customer.text,
            history=history,
            passages=kept,
            approved=approved,
            context=context,
            canary=canary,
            reference=reference,
        )
    )
    sources = [Source(p.cite_id, p.cite_title, p.text) for p in kept]
    sources += [Source("approved", "Approved answer", a.answer) for a in approved]
    seen = "\n".join([customer.text, *(m.text for m in history), json.dumps(context)])
    checker = ReplyChecker(
        guidelines,
        sources,
        # The instructions alone: the system message also holds the passages, which a reply
        # may quote.
        instructions=prompts.system_prompt(guidelines, canary=canary),
        canary=canary,
        seen=seen,
    )
    offered = tools_offered(fd)
    call = _Call()
    released: list[str] = []
    failed: str | None = None
    cut_short = False
    reason: str | None = None
    started = time.perf_counter()
    try:
        for round_ in range(TOOL_ROUNDS + 1):
            tools = offered if round_ < TOOL_ROUNDS else ()
            request = ChatRequest(
                tuple(messages),
                tools=tools,
                max_tokens=settings.model_max_tokens,
                temperature=settings.model_temperature,
            )
            call.calls += 1
            text = ""
            buffer = ""
            calls: list[ToolCall] = []
            usage: Usage | None = None
            stream = model.stream(request)
            timed = _timed(stream, call, started)
            try:
                async for chunk in timed:
                    calls.extend(chunk.tool_calls)
                    usage = chunk.usage or usage
                    if not chunk.text:
                        continue
                    text += chunk.text
                    done, buffer = split_sentences(buffer + chunk.text)
                    for sentence in done:
                        failed, stop = await _release(
                            fd, checker, customer, sentence, released, guidelines
                        )
                        cut_short = cut_short or stop
                        if failed or stop:
                            break
                    if failed or cut_short:
                        break
            finally:
                await timed.aclose()
                await _close(stream)
            if usage is None:  # stopped early, or a server that reports none
                asked = sum(estimate_tokens(m.content) for m in request.messages)
                usage = Usage(asked, estimate_tokens(text), estimated=True)
            call.add(usage)
            if not failed and not cut_short and buffer.strip():
                failed, stop = await _release(fd, checker, customer, buffer, released, guidelines)
                cut_short = cut_short or stop
            if failed or released or not calls or not tools:
                break
            # The model asked for tools: run them through the policy gate, then ask again.
            messages.append(ChatMessage("assistant", text, tool_calls=tuple(calls)))
            for tool_call in calls:
                result = await _run_tool(fd, customer.conversation_id, state, tool_call, call)
                messages.append(ChatMessage("tool", tool_text(result), tool_call_id=tool_call.id))
                # A refusal is a source too: the model may pass it on in its own words.
                checker.add_source(Source.from_tool(tool_call.name, result))
    except ModelUnavailable as error:
        reason = error.reason
    usage_total = Usage(call.prompt_tokens, call.completion_tokens, call.estimated)
    cost = (
        call.prompt_tokens * settings.model_price_input
        + call.completion_tokens * settings.model_price_output
    ) / 1_000_000
    info: dict[str, Any] = {
        "backend": model.backend,
        "model": model.model,
        "calls": call.calls,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "estimated": call.estimated,
        "cost": round(cost, 6),
        "model_ms": round(call.seconds * 1000, 1),
    }
    if call.first_token is not None:
        info["first_token_ms"] = round(call.first_token * 1000, 1)
    if call.tools:
        info["tool_calls"] = call.tools
    events: list[tuple[str, dict[str, Any]]] = [
        ("model_called", {k: v for k, v in info.items() if k != "tool_calls"})
    ]
    events += [("tool_called", {"by": "model", **t}) for t in call.tools]
    interventions: list[str] = []
    if reason is None and failed is None and not released:
        failed = "empty"
    if reason is None and failed == "grounding" and checker.claims:
        # The sentences before the unsupported one passed every check and were shown as
        # drafts, at least one of them a supported statement: the reply ends there.
        interventions.append(failed)
        info["cut"] = failed
        failed = None
    if reason is not None or failed is not None:
        info["fallback"] = reason or failed
        events.append(("model_fallback", {"reason": reason or failed}))
        if failed is not None:
            interventions.append(failed)
        turn = ModelTurn(fallback, used_model=False, interventions=interventions)
    else:
        text, was_cut = cut(released, guidelines.model.max_sentences)
        if was_cut or cut_short:
            interventions.append("length")
        text = clean_reply(text)
        turn = ModelTurn(
            Draft(text, checker.citations(), handoff=False, grounded_in=text, cited_text=text),
            used_model=True,
            claims=checker.claims,
            interventions=interventions,
        )
    turn.meta = info
    turn.events = events
    turn.usage = usage_total
    turn.cost = cost
    turn.model_seconds = call.seconds
    return turn


async def _release(
    fd: Frontdesk,
    checker: ReplyChecker,
    customer: Message,
    sentence: str,
    released: list[str],
    guidelines: Any,
) -> tuple[str | None, bool]:
    """Check one sentence; publish it when it passes. Returns (failed check, stop: the reply
    reached its length)."""
    if len(released) >= guidelines.model.max_sentences:
        return None, True
    verdict = checker.check(sentence)
    if not verdict.ok:
        # The model saw only pseudonymized text, so its sentence holds no raw personal data.
        log.debug("model sentence refused by the %s check: %r", verdict.check, sentence)
        return verdict.check, False
    piece = clean_reply(sentence)
    if not piece:
        return None, False
    shown = (" " if released else "") + piece
    released.append(sentence)
    await fd.bus.publish(
        customer.conversation_id,
        {"type": "draft", "reply_to": customer.id, "index": len(released) - 1, "text": shown},
    )
    return None, False


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _run_tool(
    fd: Frontdesk, conversation_id: str, state: dict[str, Any], tool_call: ToolCall, call: _Call
) -> dict[str, Any]:
    """One tool call of the model, through the policy gate; the result as the model sees it."""
    from frontdesk.actions.shop import ShopBackend

    auth = state.get("auth") or {}
    ctx = flow_tools.ToolContext(conversation_id, customer_id=auth.get("customer_id") or None)
    record: dict[str, Any] = {"tool": tool_call.name}
    try:
        if tool_call.name not in MODEL_TOOLS:
            raise flow_tools.ToolRefused(
                "not_offered", f"{tool_call.name} is not available here; a flow does that."
            )
        result = await flow_tools.run_tool(ShopBackend(fd), ctx, tool_call.name, tool_call.parsed())
    except flow_tools.ToolRefused as refused:
        record.update(ok=False, code=refused.code)
        call.tools.append(record)
        return {"error": refused.code, "message": refused.message}
    record["ok"] = True
    call.tools.append(record)
    scrubbed: dict[str, Any] = _scrub(fd, result)
    return scrubbed


def wants_model(action: Action, reason: str) -> bool:
    """The turns a model writes: knowledge answers, and unclear questions (it may ask back
    or answer from a tool). Flows, handoffs, small talk and out-of-scope stay templated."""
    return action is Action.ANSWER or (action is Action.REPHRASE and reason == "low_confidence")


async def compose(
    fd: Frontdesk,
    model: ChatModel,
    *,
    customer: Message,
    history: tuple[Message, ...],
    decision: Decision,
    passages: tuple[Passage, ...],
    fallback: Draft,
    guidelines: Any,
    vector: Vector | None,
) -> tuple[Decision, ModelTurn]:
    """The model's turn and the decision it leaves: an unclear question the model answered
    from a source counts as answered; the conversation's token usage is carried."""
    hints = (
        [prompts.ApprovedHint(a.question, a.answer) for a in fd.approved_hints(vector)]
        if vector is not None
        else []
    )
    turn = await write_reply(
        fd,
        model,
        customer=customer,
        history=history,
        state=decision.state,
        passages=passages,
        approved=hints,
        fallback=fallback,
        guidelines=guidelines,
        reference=fallback.text
        if decision.action is Action.ANSWER and fallback.grounded_in
        else None,
    )
    state = dict(decision.state)
    if turn.used_model and decision.action is Action.REPHRASE and turn.claims:
        state["low_confidence_streak"] = 0
        state.pop("offered_human", None)
        decision = Decision(Action.ANSWER, "model", state)
    if turn.usage is not None and turn.meta.get("calls"):
        used = dict(state.get("model_usage") or {})
        used["tokens"] = int(used.get("tokens", 0)) + turn.usage.total
        used["cost"] = round(float(used.get("cost", 0.0)) + turn.cost, 6)
        state["model_usage"] = used
    return Decision(decision.action, decision.reason, state), turn
