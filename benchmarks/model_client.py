"""The CPU the OpenAI-compatible adapter spends on one streamed reply, beside the SDK's own way.

    .venv/bin/python benchmarks/model_client.py [--calls 300] [--words 49]

No server and no network: the adapter's HTTP client gets an in-process transport that answers
every request at once with the same canned stream (``--words`` chunks of one word each, a
finish chunk, a usage chunk, ``[DONE]``). The request is shaped like a model turn of the demo
store: a system message of some 3,000 characters, three turns, and the tools a model turn is
offered (``actions.model_turn``).
Timed, in CPU milliseconds per call (request built and sent, stream read to its end):

* ``sdk``: ``client.chat.completions.create(stream=True)``, iterating the SDK's stream (a
  pydantic object per chunk), with the messages and tools as typed parameters; what the
  adapter did before 2026-11-30;
* ``adapter``: ``OpenAIChatModel.stream`` as it is: the SDK sends the request (its response
  read raw), the messages and tools go in ``extra_body``, the events are parsed with ``json``.

Both with and without the tools. The figures are the client's own work, which a turn spends
inside the model's time (``meta.model.model_ms``) in ``benchmarks/model_overhead.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx2

from frontdesk.actions.model_turn import _model_tool_schemas
from frontdesk.adapters.models.openai_service import OpenAIChatModel, ReplyAssembler
from frontdesk.core.chat import ChatMessage, ChatRequest


def canned_stream(words: int) -> bytes:
    text = ("Refunds to a credit card take 5–7 business days after the items arrive. " * 8).split()
    events: list[dict[str, Any]] = []
    for n in range(words):
        delta = {"content": ("" if n == 0 else " ") + text[n % len(text)]}
        events.append({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({"choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": words}})
    envelope = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body = "".join(f"data: {json.dumps({**envelope, **e})}\n\n" for e in events)
    return (body + "data: [DONE]\n\n").encode()


def request(tools: bool) -> ChatRequest:
    system = (
        "You are Nora, the assistant of Northwind Outfitters. Answer from the passages below "
        "and cite them. Never promise a refund the policy does not give. "
    ) * 20
    messages = (
        ChatMessage("system", system),
        ChatMessage("user", "Hi, I bought boots last week."),
        ChatMessage("assistant", "Hello! How can I help with your boots?"),
        ChatMessage("user", "How long do refunds take?"),
    )
    return ChatRequest(messages, tools=_model_tool_schemas() if tools else ())


async def per_call(model: OpenAIChatModel, how: str, req: ChatRequest, calls: int) -> float:
    async def once() -> str:
        if how == "adapter":
            return "".join([chunk.text async for chunk in model.stream(req)])
        params: dict[str, Any] = {"model": model.model, "messages": req.openai_messages()}
        if req.tools:
            params["tools"] = [dict(t) for t in req.tools]
        create: Any = model._client.chat.completions.create
        stream = await create(stream=True, stream_options={"include_usage": True}, **params)
        assembler = ReplyAssembler()
        async for chunk in stream:
            assembler.feed(chunk)
        return assembler.text

    first = await once()
    assert first.startswith("Refunds to a credit card"), first[:40]
    for _ in range(max(10, calls // 10)):  # warm-up
        await once()
    started = time.process_time()
    for _ in range(calls):
        await once()
    return (time.process_time() - started) * 1000 / calls


async def main_async(calls: int, words: int) -> None:
    body = canned_stream(words)

    def answer(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as http:
        model = OpenAIChatModel(model="m", base_url="http://model.invalid/v1", http_client=http)
        print(f"CPU per streamed reply ({calls} calls, {words} chunks of one word each):")
        for tools in (True, False):
            req = request(tools)
            label = f"{len(req.tools)} tools" if tools else "no tools"
            for how in ("sdk", "adapter"):
                ms = await per_call(model, how, req, calls)
                print(f"  {label:9s} {how:8s} {ms:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls timed each way")
    parser.add_argument("--words", type=int, default=49, help="chunks in the canned reply")
    args = parser.parse_args()
    asyncio.run(main_async(args.calls, args.words))


if __name__ == "__main__":
    main()
