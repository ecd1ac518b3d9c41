"""Model servers for tests, real HTTP on 127.0.0.1, so that the adapters are tested at their
boundary (the openai SDK, httpx, SSE) and not through mocks.

- ``ScriptedModelServer``: an OpenAI-compatible server that answers from a script
  (``ScriptedReply``: text in pieces, tool calls, delays, an HTTP error, a dropped connection,
  no answer at all) and records every request body (``requests``).
- ``RecordingProxy``: a proxy in front of a real server (the llama.cpp server of
  ``scripts/model_server.sh``): streams the answers through, records the request bodies, can
  rewrite them, add a delay, and ``stop()`` to play a server that went down.
- fixtures ``scripted_server``, ``llama_server_url`` (session; skips when
  FRONTDESK_TEST_MODEL_URL is unset, fails when it is set but does not answer),
  ``llama_proxy`` and ``close_later`` (closes models after the test); helpers ``collect``,
  ``FakeClock``, ``RecordedSleeps`` for the resilience wrapper. The root conftest can load
  them for every module (``pytest_plugins = ["model_servers"]``); a single module can bind
  them instead (``scripted_server = model_servers.scripted_server``).

``RecordingProxy`` lives in ``loopback_http`` (with the clean-stopping server base) and is
re-exported here.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from frontdesk.core.chat import ChatChunk, ChatMessage, ChatModel, ChatRequest
from loopback_http import Json, RecordingProxy, _Handler, _LoopbackServer

__all__ = [
    "REQUEST",
    "CloseLater",
    "FakeClock",
    "RecordedSleeps",
    "RecordingProxy",
    "ScriptedModelServer",
    "ScriptedReply",
    "ScriptedToolCall",
    "close_later",
    "collect",
    "llama_proxy",
    "llama_server_url",
    "scripted_server",
]

# A short request for the adapter tests.
REQUEST = ChatRequest(
    messages=(
        ChatMessage("system", "You are the front desk of a small shop. Answer briefly."),
        ChatMessage("user", "Where is my order A-1001?"),
    ),
    max_tokens=32,
)


# --- the scripted server ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: str = "{}"  # JSON text, streamed in ``ScriptedReply.argument_pieces`` pieces
    id: str | None = None  # None: call_<n>


@dataclass(frozen=True)
class ScriptedReply:
    """One answer of ``ScriptedModelServer``.

    ``text`` is streamed in ``pieces`` (default: word by word, spaces kept). ``usage``
    (prompt, completion) is reported when the request asks for it (``stream_options``) or
    does not stream; None reports none. ``status`` other than 200 answers an error
    ``{"error": {"message": error}}``. ``first_delay``: seconds before the first chunk (after
    the headers); ``chunk_delay``: between chunks; ``drop_after``: the connection is cut after
    that many chunks (no end, no [DONE]); ``hang``: never answers (until the server stops).
    ``stream_error``: after the text, an event ``{"error": {"message": stream_error}}`` ends
    the stream, as a server failing mid-reply sends. ``sse_extras``: each event comes after a
    comment line and an ``event:`` field, and the first one's JSON is split over two
    ``data:`` lines (all valid server-sent events).
    Tool calls stream like llama.cpp's server: with ``repeat_call_identity`` their id and name
    come again in every chunk; ``repeat_full_arguments`` sends the whole arguments once more at
    the end, as some servers do."""

    text: str = ""
    pieces: Sequence[str] | None = None
    tool_calls: Sequence[ScriptedToolCall] = ()
    argument_pieces: int = 3
    repeat_call_identity: bool = True
    repeat_full_arguments: bool = False
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None  # None: "tool_calls" with tool calls, else "stop"
    status: int = 200
    error: str = "scripted failure"
    first_delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    hang: bool = False
    stream_error: str | None = None
    sse_extras: bool = False

    def text_pieces(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if self.text else []


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(parts, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class ScriptedModelServer(_LoopbackServer):
    """An OpenAI-compatible server answering from a script. ``script(*replies)`` queues
    replies; each ``POST /v1/chat/completions`` takes the next (or ``default`` when the queue
    is empty; with no default, an HTTP 500 "script exhausted"). ``requests`` holds every chat
    request body received, parsed, in order; ``headers`` their headers (names lowercased).
    ``GET /v1/models`` lists ``model``. ``reject_stream_options``: refuse (HTTP 400) any
    request carrying ``stream_options``, as some servers do."""

    def __init__(self, model: str = "scripted-model") -> None:
        super().__init__()
        self.handler = _ScriptedHandler
        self.model = model
        self.requests: list[Json] = []
        self.headers: list[dict[str, str]] = []
        self.default: ScriptedReply | None = None
        self.reject_stream_options = False
        self._script: deque[ScriptedReply] = deque()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: ScriptedReply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    def next_reply(self, body: Json, headers: dict[str, str]) -> ScriptedReply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self.reject_stream_options and "stream_options" in body:
                return ScriptedReply(status=400, error="unknown parameter: stream_options")
            if self._script:
                return self._script.popleft()
        return self.default or ScriptedReply(status=500, error="script exhausted")

    def __enter__(self) -> ScriptedModelServer:
        self.start()
        return self


class _ScriptedHandler(_Handler):
    @property
    def owner(self) -> ScriptedModelServer:
        owner = self.server.owner
        assert isinstance(owner, ScriptedModelServer)
        return owner

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": self.owner.model, "object": "model", "owned_by": "tests"}
            self.send_json(200, {"object": "list", "data": [model]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        raw = self.read_body()
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "the body is not JSON"}})
            return
        reply = self.owner.next_reply(body, {k.lower(): v for k, v in self.headers.items()})
        try:
            self._answer(body, reply)
        except OSError:  # the client went away (it timed out, or was closed)
            self.close_connection = True

    def _answer(self, body: Json, reply: ScriptedReply) -> None:
        stopping = self.owner.stopping
        if reply.hang:
            stopping.wait()
            self.cut()
            return
        if reply.status != 200:
            if stopping.wait(reply.first_delay):
                return
            self.send_json(reply.status, {"error": {"message": reply.error, "type": "scripted"}})
            return
        if not body.get("stream"):
            if stopping.wait(reply.first_delay):
                return
            self.send_json(200, self._completion(reply))
            return
        self.start_chunked()
        if stopping.wait(reply.first_delay):
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for sent, chunk in enumerate(self._chunks(reply, include_usage)):
            if reply.drop_after is not None and sent >= reply.drop_after:
                self.cut()
                return
            if sent and stopping.wait(reply.chunk_delay):
                return
            data = json.dumps(chunk).encode()
            if (
                reply.stream_error is not None
                and chunk["choices"]
                and chunk["choices"][0].get("finish_reason")
            ):
                error = {"error": {"message": reply.stream_error, "type": "server_error"}}
                self.write_chunk(b"data: " + json.dumps(error).encode() + b"\n\n")
                break
            if reply.sse_extras:
                cut = data.index(b",") + 1 if sent == 0 else len(data)
                data = data[:cut] + (b"\ndata: " + data[cut:] if cut < len(data) else b"")
                self.write_chunk(b": keep-alive\nevent: chunk\n")
            self.write_chunk(b"data: " + data + b"\n\n")
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_chunked()

    def _finish_reason(self, reply: ScriptedReply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _envelope(self, choices: list[Json], **extra: Any) -> Json:
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.owner.model,
            "choices": choices,
            **extra,
        }

    def _chunks(self, reply: ScriptedReply, include_usage: bool) -> Iterator[Json]:
        def delta(d: Json, finish: str | None = None) -> Json:
            return self._envelope([{"index": 0, "delta": d, "finish_reason": finish}])

        role: Json = {"role": "assistant"}
        for piece in reply.text_pieces():
            yield delta({**role, "content": piece})
            role = {}
        for index, call in enumerate(reply.tool_calls):
            identity = {"id": call.id or f"call_{index}", "type": "function"}
            pieces = _split(call.arguments, reply.argument_pieces)
            if reply.repeat_full_arguments:
                pieces.append(call.arguments)
            for number, piece in enumerate(pieces):
                full = number == 0 or reply.repeat_call_identity
                function: Json = {"arguments": piece}
                if full:
                    function["name"] = call.name
                entry: Json = {"index": index, "function": function}
                if full:
                    entry.update(identity)
                yield delta({**role, "tool_calls": [entry]})
                role = {}
        yield delta(role, self._finish_reason(reply))
        if include_usage and reply.usage is not None:
            yield self._envelope([], usage=_usage(reply.usage))

    def _completion(self, reply: ScriptedReply) -> Json:
        message: Json = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        choice = {"index": 0, "message": message, "finish_reason": self._finish_reason(reply)}
        body = self._envelope([choice], object="chat.completion")
        if reply.usage is not None:
            body["usage"] = _usage(reply.usage)
        return body


def _usage(usage: tuple[int, int]) -> Json:
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# --- the recording proxy ---------------------------------------------------------------------


# --- fixtures ----------------------------------------------------------------------------------

MODEL_URL_ENV = "FRONTDESK_TEST_MODEL_URL"


@pytest.fixture
def scripted_server() -> Iterator[ScriptedModelServer]:
    """A started ScriptedModelServer, stopped after the test."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def llama_server_url() -> str:
    """The base URL of the real model server (llama.cpp serving SmolLM2 as ``smollm2``)."""
    url = os.environ.get(MODEL_URL_ENV, "").rstrip("/")
    if not url:
        pytest.skip(
            f"no real model server: {MODEL_URL_ENV} is not set: start one with "
            "`scripts/model_server.sh start DIR` and export the URL it prints (make test does)"
        )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/models", timeout=10) as response:
            response.read()
    except (OSError, urllib.error.URLError) as exc:
        pytest.fail(f"{MODEL_URL_ENV}={url} does not answer GET /models: {exc}")
    return url


@pytest.fixture
def llama_proxy(llama_server_url: str) -> Iterator[RecordingProxy]:
    """A RecordingProxy in front of the real model server, stopped after the test."""
    with RecordingProxy(llama_server_url) as proxy:
        yield proxy


@pytest.fixture
async def close_later() -> AsyncIterator[CloseLater]:
    """``close_later(model)``: the model, closed after the test (no connection left open)."""
    closer = CloseLater()
    yield closer
    await closer.aclose()


# --- small helpers for model tests -------------------------------------------------------------

M = TypeVar("M", bound=ChatModel)


class CloseLater:
    def __init__(self) -> None:
        self.models: list[ChatModel] = []

    def __call__(self, model: M) -> M:
        self.models.append(model)
        return model

    async def aclose(self) -> None:
        for model in reversed(self.models):
            await model.aclose()


async def collect(stream: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [chunk async for chunk in stream]


class FakeClock:
    """A clock for ``CircuitBreaker(clock=...)``: advance it with ``clock.now += seconds``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordedSleeps:
    """A sleep for ``ResilientChatModel(sleep=...)`` that returns at once and records the
    backoff delays it was asked for in ``delays``."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
