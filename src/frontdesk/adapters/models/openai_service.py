"""Any OpenAI-compatible chat-completions server, streaming: OpenAI, Azure OpenAI, vLLM,
Ollama, LM Studio, llama.cpp's server (``llama_cpp.server`` or ``llama-server``).

``OpenAIChatModel.from_settings`` takes ``openai_base_url`` / ``openai_api_key`` /
``openai_model`` (or the standard ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``). A local server
that checks no key gets the placeholder ``not-needed``, since the SDK insists on one.

Azure OpenAI works through its v1 endpoint, which takes the plain OpenAI API: set the base URL
to ``https://RESOURCE.openai.azure.com/openai/v1/``, the API key to the resource's key, and the
model to the name of the *deployment*.

What this adapter does, so that the pipeline sees the same stream from every server:

- text pieces are yielded as they arrive; tool calls are assembled from their pieces (by index,
  the id and name taken once, only the argument pieces joined, so a server that repeats the id
  and name in every chunk, as llama.cpp's does, or repeats the whole arguments, still gives one
  clean call) and come, finished, on the last chunk with the usage and the finish reason;
- usage is asked for (``stream_options.include_usage``); a server that reports none gets an
  estimate (``Usage.estimated``); a server that refuses ``stream_options`` (HTTP 400/422) gets
  the request again without it, once, and never again after that succeeds; the same for a model
  that wants ``max_completion_tokens`` instead of ``max_tokens`` (OpenAI's reasoning models);
- the SDK sends the request and raises for an HTTP error, but the stream is read here: its
  ``data:`` lines are parsed with ``json`` into dicts, and the messages and tool schemas go into
  the body as they are (``extra_body``), where the SDK would build a pydantic object of every
  chunk and walk every message and schema against its types on every call (about 20 ms of CPU
  for a reply of 49 chunks, against 3 ms this way: ``benchmarks/model_client.py``);
- every failure, from connection refused to a malformed stream, is ``ModelUnavailable`` with
  reason ``timeout`` or ``error`` and a short detail that never holds the API key; a stream that
  ends without a finish reason is an error too (the reply may be cut). The SDK does not retry
  (``max_retries=0``): ``ResilientChatModel`` does, with timeouts and a circuit breaker.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httpx2
import openai

from frontdesk.core.chat import (
    ChatChunk,
    ChatModel,
    ChatRequest,
    ModelUnavailable,
    ToolCall,
    Usage,
    estimate_tokens,
)

if TYPE_CHECKING:
    import httpx

    from frontdesk.config import Settings

PLACEHOLDER_API_KEY = "not-needed"
MAX_DETAIL = 200


class _ServerError(Exception):
    """An ``error`` object in the middle of a stream."""


# What a server or the SDK can throw while a reply is requested or read.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    _ServerError,
    openai.OpenAIError,
    httpx2.HTTPError,
    ValueError,  # a chunk that is not JSON
    OSError,
)


def _get(obj: Any, key: str) -> Any:
    """A field of a chunk, whether a dict (llama.cpp in process) or an SDK object."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""

    def add_arguments(self, piece: str) -> None:
        if not piece:
            return
        if self.arguments and _json_object(self.arguments) and _json_object(piece):
            # The call was already whole and the server sent it again in full: keep one.
            self.arguments = piece
        else:
            self.arguments += piece


@dataclass(slots=True)
class ReplyAssembler:
    """Builds one reply from streamed ``chat.completion.chunk`` objects (SDK objects or dicts):
    ``feed`` returns each chunk's text piece; ``last_chunk`` the closing ``ChatChunk``."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)

    def feed(self, chunk: Any) -> str:
        usage = _get(chunk, "usage")
        if usage is not None:
            prompt = _get(usage, "prompt_tokens")
            completion = _get(usage, "completion_tokens")
            if isinstance(prompt, int) and isinstance(completion, int):
                self.usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
        piece = ""
        for choice in _get(chunk, "choices") or ():
            if (_get(choice, "index") or 0) != 0:
                continue  # one reply is asked for (n=1)
            delta = _get(choice, "delta")
            if delta is not None:
                content = _get(delta, "content")
                if isinstance(content, str):
                    piece += content
                for call in _get(delta, "tool_calls") or ():
                    self._add_call(call)
            reason = _get(choice, "finish_reason")
            if isinstance(reason, str) and reason:
                self.finish_reason = reason
        self.text += piece
        return piece

    def _add_call(self, call: Any) -> None:
        index = _get(call, "index")
        index = index if isinstance(index, int) else 0
        partial = self.calls.setdefault(index, _PartialCall())
        call_id = _get(call, "id")
        if call_id and not partial.id:
            partial.id = str(call_id)
        function = _get(call, "function")
        if function is None:
            return
        name = _get(function, "name")
        if name and not partial.name:
            partial.name = str(name)
        arguments = _get(function, "arguments")
        if isinstance(arguments, str):
            partial.add_arguments(arguments)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=p.id or f"call_{index}", name=p.name, arguments=p.arguments or "{}")
            for index, p in sorted(self.calls.items())
        )

    def last_chunk(self, request: ChatRequest) -> ChatChunk:
        calls = self.tool_calls()
        usage = self.usage or estimate_usage(request, self.text, calls)
        return ChatChunk(tool_calls=calls, usage=usage, finish_reason=self.finish_reason)


def estimate_usage(request: ChatRequest, text: str, calls: Iterable[ToolCall] = ()) -> Usage:
    """Usage counted as characters / 4, for a server that reports none."""
    prompt = "".join(
        m.content + "".join(c.name + c.arguments for c in m.tool_calls) for m in request.messages
    )
    if request.tools:
        prompt += json.dumps(list(request.tools))
    completion = text + "".join(c.name + c.arguments for c in calls)
    return Usage(
        prompt_tokens=estimate_tokens(prompt),
        completion_tokens=estimate_tokens(completion),
        estimated=True,
    )


class OpenAIChatModel(ChatModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint (see the module)."""

    backend = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        http_client: httpx2.AsyncClient | httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or PLACEHOLDER_API_KEY
        self._owns_http_client = http_client is None
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=base_url,
            max_retries=0,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            # the SDK takes httpx's and httpx2's clients alike
            http_client=cast("httpx2.AsyncClient | None", http_client),
        )
        self._stream_options = True  # False once the server refused them
        self._max_tokens_field = "max_tokens"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatModel:
        return cls(
            model=settings.openai_model,
            base_url=settings.resolved_openai_base_url,
            api_key=settings.resolved_openai_api_key,
            timeout=settings.model_timeout_seconds,
        )

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        return self._stream(request)

    async def _stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        opened = await self._open(request)
        assembler = ReplyAssembler()
        try:
            async for chunk in _events(opened.response):
                piece = assembler.feed(chunk)
                if piece:
                    yield ChatChunk(text=piece)
        except TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        finally:
            with contextlib.suppress(Exception):
                await opened.close()
        if assembler.finish_reason is None:
            raise ModelUnavailable("error", "the stream ended before the reply was finished")
        yield assembler.last_chunk(request)

    async def _open(self, request: ChatRequest) -> _Opened:
        stream_options, max_field = self._stream_options, self._max_tokens_field
        adapted = False
        while True:
            try:
                response = await self._create(request, stream_options, max_field)
            except openai.APIStatusError as exc:
                if exc.status_code in (400, 422) and not adapted:  # one adapted retry at most
                    adapted = True
                    if "max_completion_tokens" in _message(exc) and max_field == "max_tokens":
                        max_field = "max_completion_tokens"
                        continue
                    if stream_options:
                        stream_options = False
                        continue
                raise self._unavailable(exc) from exc
            except TRANSPORT_ERRORS as exc:
                raise self._unavailable(exc) from exc
            self._stream_options, self._max_tokens_field = stream_options, max_field
            return response

    async def _create(self, request: ChatRequest, stream_options: bool, max_field: str) -> _Opened:
        # The messages and the tools go into the body as they are: they are plain JSON already,
        # and the SDK's typed transform of them costs some 5 ms a call (the ``messages=[]``
        # placeholder is replaced by ``extra_body``'s, which the SDK merges over its own).
        body: dict[str, Any] = {"messages": request.openai_messages()}
        if request.tools:
            body["tools"] = [dict(tool) for tool in request.tools]
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [],
            "stream": True,
            "temperature": request.temperature,
            max_field: request.max_tokens,
            "extra_body": body,
        }
        if stream_options:
            params["stream_options"] = {"include_usage": True}
        if request.tool_choice is not None:
            params["tool_choice"] = request.tool_choice
        manager: Any = self._client.chat.completions.with_streaming_response.create(**params)
        # Entering sends the request, and raises for an HTTP error status.
        return _Opened(manager, await manager.__aenter__())

    def _unavailable(self, exc: BaseException) -> ModelUnavailable:
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            # (the SDK's while it sends the request, httpx's while the stream is read here)
            return ModelUnavailable("timeout", "the model server did not answer in time")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            detail = f"HTTP {status} from the model server: {_message(exc)}"
            return ModelUnavailable("error", self._redact(detail), retryable=retryable)
        if isinstance(exc, _ServerError):
            return ModelUnavailable("error", self._redact(f"the model server sent an error: {exc}"))
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            why = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            return ModelUnavailable("error", self._redact(f"model server unreachable ({why})"))
        return ModelUnavailable("error", self._redact(f"{type(exc).__name__}: {exc}"))

    def _redact(self, detail: str) -> str:
        if self._api_key != PLACEHOLDER_API_KEY and len(self._api_key) >= 4:
            detail = detail.replace(self._api_key, "***")  # before cutting: no half key left
        return " ".join(detail.split())[:MAX_DETAIL]

    async def aclose(self) -> None:
        if self._owns_http_client:
            await self._client.close()


@dataclass(frozen=True, slots=True)
class _Opened:
    """A streamed response the SDK has opened (``with_streaming_response``), read by
    ``_events``."""

    manager: Any  # the SDK's context manager, whose exit closes the response
    response: Any  # the SDK's raw response

    async def close(self) -> None:
        await self.manager.__aexit__(None, None, None)


async def _events(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to ``[DONE]`` (the rest is read, so
    that the connection can serve the next request). Other fields (``event:``, ``id:``) and
    comments are skipped; an object with an ``error`` is the server's error mid-stream."""
    data: list[str] = []
    done = False
    async for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:
            payload, data = "\n".join(data), []
            done = done or payload.startswith("[DONE]")
            if not done:
                yield _chunk(payload)
    if data and not done and not data[0].startswith("[DONE]"):
        yield _chunk("\n".join(data))  # the last event, without the blank line that ends it


def _chunk(payload: str) -> dict[str, Any]:
    chunk = json.loads(payload)
    if not isinstance(chunk, dict):
        raise ValueError(f"a stream event that is not a JSON object: {payload[:60]}")
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, Mapping) else None
        raise _ServerError(message or json.dumps(error)[:MAX_DETAIL])
    return chunk


def _message(exc: openai.APIStatusError) -> str:
    """The server's own words for a refusal: ``error.message`` of its JSON body, else text."""
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, Mapping) else error
        if message:
            return str(message) if not isinstance(message, (dict, list)) else json.dumps(message)
    with contextlib.suppress(Exception):
        return exc.response.text[:MAX_DETAIL]
    return exc.message
