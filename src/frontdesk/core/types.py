"""Domain types shared by every layer: ids, enums and frozen records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NewType

ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", str)
CustomerId = NewType("CustomerId", str)
ChunkId = NewType("ChunkId", str)
ArticleId = NewType("ArticleId", str)


_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of datetime used here)."""
    return datetime.now(UTC) if _clock is None else _clock()


@contextmanager
def simulated_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Make ``utcnow()`` read ``clock`` in this process until the block ends.

    Only the traffic simulator uses it (``frontdesk demo --simulate``), which plays weeks of
    conversations through the real pipeline in a process that serves nothing else meanwhile."""
    global _clock
    previous = _clock
    _clock = clock
    try:
        yield
    finally:
        _clock = previous


class Role(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class Mode(StrEnum):
    BOT = "bot"
    HUMAN = "human"


class Status(StrEnum):
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Citation:
    id: ArticleId
    title: str


@dataclass(frozen=True, slots=True)
class Message:
    id: MessageId
    conversation_id: ConversationId
    seq: int
    role: Role
    text: str
    created_at: datetime
    client_message_id: str | None = None
    reply_to: MessageId | None = None
    citations: tuple[Citation, ...] = ()

    def public(self) -> dict[str, Any]:
        """The message as the API and the widget see it."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "role": self.role.value,
            "text": self.text,
            "client_message_id": self.client_message_id,
            "reply_to": self.reply_to,
            "created_at": self.created_at.isoformat(),
            "citations": [{"id": c.id, "title": c.title} for c in self.citations],
        }


@dataclass(frozen=True, slots=True)
class Conversation:
    id: ConversationId
    channel: str
    mode: Mode
    status: Status
    created_at: datetime
    updated_at: datetime
    customer_id: CustomerId | None = None
    state: dict[str, Any] = field(default_factory=dict)
    assigned_to: str | None = None  # the user (agent) handling it, if any


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved knowledge chunk with its fused score and dense similarity."""

    chunk_id: ChunkId
    article_id: ArticleId
    title: str
    text: str
    cite_id: ArticleId
    cite_title: str
    score: float
    similarity: float
