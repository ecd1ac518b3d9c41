"""The ChatModel port: what Frontdesk asks of a generative model, whoever serves it.

Adapters (``frontdesk.adapters.models``) implement ``ChatModel.stream`` for one kind of server:
any OpenAI-compatible chat-completions endpoint, llama.cpp in process. The pipeline only ever
sees these types, so a scripted model in a test and ChatGPT in production take the same path.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

ChatRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str

    def parsed(self) -> dict[str, Any]:
        """The arguments as a dict; anything that is not a JSON object reads as no arguments
        (the policy gate then reports what is missing)."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message as the chat-completions API takes it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    # OpenAI function-calling schemas ({"type": "function", "function": {...}}).
    tools: tuple[dict[str, Any], ...] = ()
    # None: the server's default ("auto" when tools are offered); or "none", "auto",
    # "required", or {"type": "function", "function": {"name": ...}}.
    tool_choice: str | dict[str, Any] | None = None
    max_tokens: int = 350
    temperature: float = 0.2

    def openai_messages(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.messages]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # the server reported none: counted as characters / 4

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One step of a streamed reply: a piece of text, finished tool calls (adapters assemble
    the pieces a server streams), and on the last chunk the usage and finish reason."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class ChatReply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None

    def add(self, chunk: ChatChunk) -> None:
        self.text += chunk.text
        self.tool_calls.extend(chunk.tool_calls)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason


class ModelUnavailable(Exception):
    """The model gave no usable answer. ``reason``: ``timeout``, ``error``, ``circuit_open``,
    ``interrupted`` (it stopped mid-reply) or ``budget``. ``retryable``: whether asking again
    may help (False for a refusal that would repeat, such as HTTP 400 or 401)."""

    def __init__(self, reason: str, detail: str = "", *, retryable: bool = True) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class ChatModel(ABC):
    """A generative model behind some server. Implement ``stream``; the rest has defaults."""

    backend: str  # "openai", "llama_cpp", ...
    model: str  # the model's name as the server knows it

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.model}"

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The reply as it is written. Raises ``ModelUnavailable`` when the server cannot
        answer (down, refusing, timing out); adapters do not retry, ``ResilientChatModel``
        does."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """The whole reply at once."""
        reply = ChatReply()
        async for chunk in self.stream(request):
            reply.add(chunk)
        return reply

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or threads."""


def estimate_tokens(text: str) -> int:
    """A rough token count where a server reports none (about four characters a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0
